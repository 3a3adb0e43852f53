package probe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/vaurien-go/vaurien/pkg/chaos"
)

func init() {
	Register(Spec{
		Name: "http",
		Doc: "Sends one HTTP request and reads the whole answer. It fails when the request " +
			"cannot be sent, the answer does not arrive within the timeout, or its status is " +
			"not one of status (by default, any status below 400).",
		Options: chaos.Options{
			{Name: "url", Kind: chaos.String, Default: "", Doc: "The URL to request (http or https); required."},
			{Name: "method", Kind: chaos.String, Default: "GET", Doc: "The request method."},
			{Name: "status", Kind: chaos.Ints, Default: []int64{}, Doc: "The statuses that count as a success; empty accepts any status below 400."},
			{Name: "headers", Kind: chaos.Strings, Default: []string{}, Doc: `Request headers, each written "Name: value".`},
			{Name: "body", Kind: chaos.String, Default: "", Doc: "The request body."},
			timeoutOption(2 * time.Second),
		},
		Example: `probe "app" {
  http {
    url    = "http://127.0.0.1:9000/"
    status = [200]
  }
  interval = "100ms"
}`,
		New: newHTTP,
	})
}

type httpProbe struct {
	method, url, body string
	header            http.Header
	status            []int64
	client            *http.Client
}

func newHTTP(v chaos.Values) (Prober, error) {
	raw := v.String("url")
	if raw == "" {
		return nil, errors.New(`the url option is required, as in url = "http://127.0.0.1:9000/"`)
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("url %q is not an http:// or https:// URL with a host", raw)
	}
	p := &httpProbe{method: strings.ToUpper(v.String("method")), url: raw, body: v.String("body"), header: http.Header{}, status: v.Ints("status")}
	for _, h := range v.Strings("headers") {
		name, value, ok := strings.Cut(h, ":")
		if !ok || strings.TrimSpace(name) == "" {
			return nil, fmt.Errorf(`header %q is not written "Name: value"`, h)
		}
		p.header.Add(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	for _, s := range p.status {
		if s < 100 || s > 599 {
			return nil, fmt.Errorf("status %d is not an HTTP status (100 to 599)", s)
		}
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil // a probe measures the path it names, not a proxy's
	p.client = &http.Client{Transport: t, Timeout: v.Duration("timeout"),
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return p, nil
}

func (p *httpProbe) Probe(ctx context.Context) error {
	var body io.Reader
	if p.body != "" {
		body = strings.NewReader(p.body)
	}
	req, err := http.NewRequestWithContext(ctx, p.method, p.url, body)
	if err != nil {
		return err
	}
	req.Header = p.header.Clone()
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)); err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	if len(p.status) == 0 && resp.StatusCode >= 400 || len(p.status) > 0 && !slices.Contains(p.status, int64(resp.StatusCode)) {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// Close releases the idle connections of the probe's client.
func (p *httpProbe) Close() error {
	p.client.CloseIdleConnections()
	return nil
}
