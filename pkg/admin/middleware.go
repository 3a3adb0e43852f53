package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v5"
	"github.com/rs/zerolog"

	"github.com/vaurien-go/vaurien/pkg/logging"
)

// Field names of the request log that pkg/logging does not declare.
const ()

// logRequests logs each request at debug, once its answer is known. It
// runs the error handler itself so that the logged status is the one sent.
// Headers are never logged: one of them may carry the token.
func (s *Server) logRequests(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c *echo.Context) error {
		start := time.Now()
		if err := next(c); err != nil {
			c.Echo().HTTPErrorHandler(c, err)
		}
		if e := s.log.Debug(); e.Enabled() {
			_, status := echo.ResolveResponseStatus(c.Response(), nil)
			e = e.Str(logging.FieldMethod, c.Request().Method).Str(logging.FieldPath, c.Request().URL.Path).
				Int(logging.FieldStatus, status).Dur(logging.FieldDuration, time.Since(start)).
				Str(logging.FieldClient, c.Request().RemoteAddr)
			if msg, ok := c.Get(ctxError).(string); ok {
				e = e.Str(logging.FieldReason, msg)
			}
			e.Msg("admin request")
		}
		return nil
	}
}

// recoverPanics turns a handler panic into a 500 instead of a dropped
// connection.
func (s *Server) recoverPanics(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c *echo.Context) (err error) {
		defer func() {
			p := recover()
			if p == nil {
				return
			}
			if p == http.ErrAbortHandler {
				panic(p)
			}
			s.log.Error().Interface("panic", p).Str(logging.FieldPath, c.Request().URL.Path).Msg("admin handler panicked")
			err = echo.NewHTTPError(http.StatusInternalServerError, "internal error: the handler panicked (see the log)")
		}()
		return next(c)
	}
}

// requireToken guards every call that can change something: anything but
// GET, HEAD and OPTIONS, so that a method added later is guarded too. The
// comparison hashes both sides first, so it takes the same time whatever
// the length or content of the header.
func requireToken(token string) echo.MiddlewareFunc {
	want := sha256.Sum256([]byte(token))
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c *echo.Context) error {
			switch c.Request().Method {
			case http.MethodGet, http.MethodHead, http.MethodOptions:
				return next(c)
			}
			scheme, cred, _ := strings.Cut(c.Request().Header.Get(echo.HeaderAuthorization), " ")
			got := sha256.Sum256([]byte(strings.TrimSpace(cred)))
			ok := subtle.ConstantTimeCompare(got[:], want[:]) == 1
			if !ok || !strings.EqualFold(scheme, "Bearer") {
				c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="vaurien admin"`)
				return echo.NewHTTPError(http.StatusUnauthorized, "this call changes the proxy and needs the admin token: send the header \"Authorization: Bearer <token>\"")
			}
			return next(c)
		}
	}
}

// newSlog gives echo, which logs through log/slog, a logger that writes to
// vaurien's zerolog logger.
func newSlog(log zerolog.Logger) *slog.Logger {
	return slog.New(slogHandler{log: log})
}

type slogHandler struct {
	log   zerolog.Logger
	attrs []slog.Attr
}

func (h slogHandler) level(l slog.Level) zerolog.Level {
	switch {
	case l >= slog.LevelError:
		return zerolog.ErrorLevel
	case l >= slog.LevelWarn:
		return zerolog.WarnLevel
	case l >= slog.LevelInfo:
		return zerolog.InfoLevel
	}
	return zerolog.DebugLevel
}

func (h slogHandler) Enabled(_ context.Context, l slog.Level) bool {
	return h.level(l) >= h.log.GetLevel()
}

func (h slogHandler) Handle(_ context.Context, r slog.Record) error {
	e := h.log.WithLevel(h.level(r.Level))
	add := func(a slog.Attr) bool {
		e = e.Interface(a.Key, a.Value.Any())
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	e.Msg(r.Message)
	return nil
}

func (h slogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	h.attrs = append(append([]slog.Attr(nil), h.attrs...), attrs...)
	return h
}

func (h slogHandler) WithGroup(string) slog.Handler { return h }
