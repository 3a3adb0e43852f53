// Package logging owns vaurien's logs: the zerolog logger built from the
// file's log block or the flags, the field names every event uses, and the
// proxy observer that turns engine events into log events. Connections are
// logged at debug; a failing backend at warn, sampled so that a dead backend
// under load does not flood the log; chaos-made resets are never errors.
package logging

import (
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/vaurien-go/vaurien/pkg/chaos"
	"github.com/vaurien-go/vaurien/pkg/proxy"
)

// Field names, the same in every event.
const (
	FieldRoute    = "route"
	FieldProtocol = "protocol"
	FieldBehavior = "behavior"
	FieldClient   = "client"
	FieldBackend  = "backend"
	FieldListen   = "listen"
	FieldDuration = "duration"
	FieldDrain    = "drain"
	FieldReason   = "reason"
	FieldSide     = "side"
	FieldMix      = "mix"
	FieldSeed     = "seed"
	FieldCount    = "count"
	FieldMethod   = "method"
	FieldPath     = "path"
	FieldStatus   = "status"
	FieldWarnings = "warnings"
	// FieldDiagnostics lists a configuration's problems, one
	// "file:line:col: error: ..." string each.
	FieldDiagnostics = "diagnostics"
)

// Levels and Formats are the accepted values.
var (
	Levels  = []string{"debug", "info", "warn", "error"}
	Formats = []string{"json", "console"}
)

// Durations are written with their unit ("1.5s", "250ms"), so that a
// reader never has to guess whether 10000 is milliseconds.
func init() {
	zerolog.TimeFieldFormat = time.RFC3339Nano
	zerolog.DurationFieldFormat = zerolog.DurationFormatString
}

// New builds a logger writing to out at level, as JSON lines or, with
// format "console", human-readable lines, coloured only when out is a
// terminal: colour codes in a file or a pipe are noise.
func New(out io.Writer, level, format string) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(strings.ToLower(level))
	if err != nil || level == "" || lvl < zerolog.DebugLevel || lvl > zerolog.ErrorLevel {
		return zerolog.Nop(), fmt.Errorf("invalid log level %q: want one of %s", level, strings.Join(Levels, ", "))
	}
	switch format {
	case "", "json":
	case "console":
		out = zerolog.ConsoleWriter{Out: out, TimeFormat: time.RFC3339, NoColor: !isTerminal(out)}
	default:
		return zerolog.Nop(), fmt.Errorf("invalid log format %q: want one of %s", format, strings.Join(Formats, ", "))
	}
	return zerolog.New(out).Level(lvl).With().Timestamp().Logger(), nil
}

// isTerminal reports whether w is a file open on a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// Output opens a log destination: "-" or "" is stdout, "stderr" is stderr,
// anything else a file appended to.
func Output(path string) (io.Writer, error) {
	switch path {
	case "", "-", "stdout":
		return os.Stdout, nil
	case "stderr":
		return os.Stderr, nil
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open log output: %w", err)
	}
	return f, nil
}

// Observer logs the engine's events.
type Observer struct{ Log zerolog.Logger }

var _ proxy.Observer = Observer{}

// Route returns the logger of one route.
func (o Observer) Route(name, protocol string) proxy.RouteObserver {
	l := o.Log.With().Str(FieldRoute, name).Str(FieldProtocol, protocol).Logger()
	return &routeLog{
		log: l,
		// A dead backend under load fails every dial: a few lines per
		// period say so, the metrics count the rest.
		warn: l.Sample(&zerolog.BurstSampler{Burst: 5, Period: 10 * time.Second}),
	}
}

type routeLog struct {
	log  zerolog.Logger
	warn zerolog.Logger
}

func (r *routeLog) Accepted(c net.Addr) {
	r.log.Debug().Stringer(FieldClient, c).Msg("connection accepted")
}

func (r *routeLog) Closed(c net.Addr, took time.Duration, err error) {
	e := r.log.Debug().Stringer(FieldClient, c).Dur(FieldDuration, took)
	if err != nil {
		e = e.Str(FieldReason, err.Error())
	}
	e.Msg("connection closed")
}

func (r *routeLog) Refused(reason string) {
	if reason == proxy.RefusedLoop {
		r.warn.Warn().Str(FieldReason, reason).Msg("connection refused: it comes from vaurien's own dialer, so the route's backend leads back to vaurien")
		return
	}
	r.log.Debug().Str(FieldReason, reason).Msg("connection refused")
}

func (r *routeLog) DialFailed(backend string, err error) {
	r.warn.Warn().Str(FieldBackend, backend).Err(err).Msg("backend dial failed")
}

func (r *routeLog) Relayed(chaos.Direction, int64)          {}
func (r *routeLog) Exchanged(*chaos.Request, time.Duration) {}

func (r *routeLog) Injected(behavior string, _ *chaos.Request) {
	r.log.Debug().Str(FieldBehavior, behavior).Msg("fault injected")
}

func (r *routeLog) MixChanged(m *chaos.Mix) {
	r.log.Info().Str(FieldMix, m.String()).Msg("mix set")
}

func (r *routeLog) Stopped() { r.log.Info().Msg("route stopped") }

var _ proxy.TLSObserver = (*routeLog)(nil)

// Handshake logs a failed handshake at debug: clients that give up, or
// that a TLS fault turned away, are events in a chaos proxy.
func (r *routeLog) Handshake(side string, took time.Duration, reason string, err error) {
	if err == nil {
		return
	}
	r.log.Debug().Str(FieldSide, side).Str(FieldReason, reason).Dur(FieldDuration, took).Err(err).Msg("tls handshake failed")
}

// CertReloaded logs a reload of certificate files: a failure is a warning,
// since the files in place are not the ones served.
func (r *routeLog) CertReloaded(err error) {
	if err != nil {
		r.warn.Warn().Err(err).Msg("tls certificate not reloaded: the previous one stays in force")
		return
	}
	r.log.Info().Msg("tls certificate reloaded")
}
