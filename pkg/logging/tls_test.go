package logging_test

import (
	"errors"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vaurien-go/vaurien/pkg/logging"
	"github.com/vaurien-go/vaurien/pkg/proxy"
)

// A failed handshake is an event of a chaos proxy: logged at debug, with
// its side and reason; a successful one is not logged at all.
func TestTLSHandshakeFailureAtDebug(t *testing.T) {
	for _, level := range []zerolog.Level{zerolog.DebugLevel, zerolog.InfoLevel} {
		var buf logBuffer
		obs := logging.Observer{Log: zerolog.New(&buf).Level(level)}
		r := obs.Route("web", "http").(proxy.TLSObserver)
		r.Handshake(proxy.SideClient, time.Millisecond, "", nil)
		r.Handshake(proxy.SideClient, 3*time.Millisecond, "alert_unknown_ca", errors.New("remote error: tls: unknown certificate authority"))
		evs := buf.events(t)
		if level != zerolog.DebugLevel {
			if len(evs) != 0 {
				t.Errorf("at info, handshakes logged %v", evs)
			}
			continue
		}
		if len(evs) != 1 {
			t.Fatalf("at debug, %d events logged, want the failure only: %v", len(evs), evs)
		}
		ev := evs[0]
		if ev["level"] != "debug" || ev["message"] != "tls handshake failed" || ev[logging.FieldSide] != "client" ||
			ev[logging.FieldReason] != "alert_unknown_ca" || ev[logging.FieldRoute] != "web" || ev["error"] == nil {
			t.Errorf("event %v", ev)
		}
	}
}
