package admin

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/labstack/echo/v5"
	"github.com/rs/zerolog"
)

// FuzzBrowserGuard feeds the browser rules any Host, Origin and
// Sec-Fetch-Site: they never panic, a program (no Origin, no Sec-Fetch-*)
// always passes, and a browser's call that changes something passes only
// from the same origin, by a name this server answers to.
func FuzzBrowserGuard(f *testing.F) {
	f.Add("POST", "127.0.0.1:8080", "http://127.0.0.1:8080", "same-origin")
	f.Add("POST", "evil.example:8080", "http://evil.example:8080", "same-origin")
	f.Add("GET", "vaurien:8080", "", "")
	f.Add("PUT", "[::1]:8080", "null", "cross-site")
	s := New(nil, Config{Listen: "127.0.0.1:8080", AllowedHosts: []string{"vaurien"}, Log: zerolog.Nop()})
	e := echo.New()
	f.Fuzz(func(t *testing.T, method, host, origin, site string) {
		switch method {
		case http.MethodGet, http.MethodPost, http.MethodPut:
		default:
			method = http.MethodPost
		}
		req := httptest.NewRequest(method, "/reset", nil)
		req.Host = host
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		if site != "" {
			req.Header.Set("Sec-Fetch-Site", site)
		}
		passed := false
		err := s.guardBrowsers(func(*echo.Context) error { passed = true; return nil })(e.NewContext(req, httptest.NewRecorder()))
		if err != nil && echo.StatusCode(err) != http.StatusForbidden {
			t.Fatalf("refused with %v, want a 403", err)
		}
		browser := req.Header.Get("Origin") != "" || req.Header.Get("Sec-Fetch-Site") != ""
		switch {
		case !browser && !passed:
			t.Fatalf("a program's request to %q was refused: %v", host, err)
		case !browser || !passed:
			return
		}
		if !s.hostAllowed(host) {
			t.Fatalf("a browser reached the API by %q", host)
		}
		if method == http.MethodGet {
			return
		}
		if site := req.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
			t.Fatalf("a %s call with Sec-Fetch-Site %q passed", method, site)
		}
		if o := req.Header.Get("Origin"); o != "" {
			u, err := url.Parse(o)
			if err != nil || !strings.EqualFold(u.Host, host) {
				t.Fatalf("a %s call from origin %q passed with Host %q", method, o, host)
			}
		}
	})
}
