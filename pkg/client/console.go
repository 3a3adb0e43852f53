package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/vaurien-go/vaurien/pkg/admin/api"
)

// Catalog returns every registered behavior with its declared options
// (kind, default, range, doc), as the server checks mixes against them.
func (c *Client) Catalog(ctx context.Context) (*api.Catalog, error) {
	var out api.Catalog
	if err := c.do(ctx, http.MethodGet, "/catalog", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// maxEvent bounds one event of the stream: far above the state of
// hundreds of routes.
const maxEvent = 16 << 20

// Events follows GET /events: fn gets every state the server sends, at
// once and then every second and after each change, until ctx ends (nil
// is returned), fn returns an error (returned as is) or the stream breaks.
// It does not reconnect.
func (c *Client) Events(ctx context.Context, fn func(api.Snapshot) error) error {
	u := *c.base
	u.Path += "/events"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("GET /events: %w", err)
	}
	req.Header.Set("Accept", "text/event-stream")
	// The stream outlives any per-request timeout: ctx alone ends it.
	hc := *c.http
	hc.Timeout = 0
	resp, err := hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("GET /events: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		e := &Error{Status: resp.StatusCode, Message: strings.TrimSpace(string(data))}
		var msg api.Error
		if json.Unmarshal(data, &msg) == nil && msg.Error != "" {
			e.Message = msg.Error
		}
		return e
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), maxEvent)
	var event string
	var data strings.Builder
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if event == "state" && data.Len() > 0 {
				var snap api.Snapshot
				if err := json.Unmarshal([]byte(data.String()), &snap); err != nil {
					return fmt.Errorf("GET /events: decode a state: %w", err)
				}
				if err := fn(snap); err != nil {
					return err
				}
			}
			event = ""
			data.Reset()
		case strings.HasPrefix(line, "event:"):
			event = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "data:"):
			if data.Len() > 0 {
				data.WriteByte('\n')
			}
			data.WriteString(strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	if err := sc.Err(); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("GET /events: %w", err)
	}
	return fmt.Errorf("GET /events: the server ended the stream")
}
