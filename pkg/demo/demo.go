// Package demo is the small HTTP backend built into vaurien so that the
// default vaurien.hcl runs on a laptop with no other server: a route whose
// backend is config.DemoBackend ("demo:http") is pointed at it. It is a demo, not a test server.
package demo

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Server is a running demo backend.
type Server struct {
	srv *http.Server
	ln  net.Listener
}

// Start serves the demo backend on a free loopback port.
func Start() (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("start demo backend: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "hello from vaurien's demo backend: %s %s at %s\n", r.Method, r.URL.Path, time.Now().Format(time.RFC3339Nano))
	})
	s := &Server{srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}, ln: ln}
	go s.srv.Serve(ln) // returns ErrServerClosed on Close

	return s, nil
}

// Addr is the host:port the demo backend listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops the demo backend.
func (s *Server) Close(ctx context.Context) error { return s.srv.Shutdown(ctx) }
