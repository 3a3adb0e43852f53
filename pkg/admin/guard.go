package admin

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v5"
)

// contentSecurityPolicy lets the console's page load its own script and
// style and talk to this server, and nothing else: no inline script or
// style, no other origin, no framing.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// reportPolicy is an experiment report's: one file with its style inline
// and no script.
const reportPolicy = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// guardBrowsers keeps other web pages away from the API once it serves a
// console. A page on another site can send a POST to 127.0.0.1:8080 without
// a preflight, and DNS rebinding can make a page of another site look
// same-origin, so:
//   - a request a browser sends (it carries Origin or Sec-Fetch-*) must
//     name in Host an address this server answers to: an IP address, a
//     localhost name, the listen address's host or one of allowed_hosts. A
//     rebound name is none of these.
//   - a call that can change something is refused when its Sec-Fetch-Site
//     or Origin says that it comes from another origin.
//
// Programs (curl, vaurien ctl, the original's client, Prometheus) send
// neither header: no web page can make them send a request, so they keep
// reaching the API by any name, such as a compose service's.
func (s *Server) guardBrowsers(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c *echo.Context) error {
		req := c.Request()
		h := c.Response().Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")

		origin, site := req.Header.Get(echo.HeaderOrigin), req.Header.Get("Sec-Fetch-Site")
		if origin == "" && site == "" && req.Header.Get("Sec-Fetch-Mode") == "" {
			return next(c)
		}
		if !s.hostAllowed(req.Host) {
			return echo.NewHTTPError(http.StatusForbidden, fmt.Sprintf("host %q is not a name this admin API answers browsers to: open it by IP address, a localhost name or its listen address, or add the name to admin.allowed_hosts in the configuration file", req.Host))
		}
		switch req.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			return next(c)
		}
		if site != "" && site != "same-origin" && site != "none" {
			return echo.NewHTTPError(http.StatusForbidden, fmt.Sprintf("this call changes the proxy and comes from another site (Sec-Fetch-Site: %s): only the console served by this API, or a program without an Origin header, may make it", site))
		}
		if origin != "" {
			u, err := url.Parse(origin)
			if err != nil || u.Host == "" || !strings.EqualFold(u.Host, req.Host) {
				return echo.NewHTTPError(http.StatusForbidden, fmt.Sprintf("this call changes the proxy and comes from another origin (Origin: %s, Host: %s): only the console served by this API, or a program without an Origin header, may make it", origin, req.Host))
			}
		}
		return next(c)
	}
}

// hostAllowed reports whether a browser may reach this server by hostport,
// the Host header of its request.
func (s *Server) hostAllowed(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(strings.Trim(host, "[]"), "."))
	switch {
	case host == "":
		return false
	case net.ParseIP(host) != nil:
		// A rebinding attack needs a name: a page served from an IP
		// address is that address's own origin.
		return true
	case host == "localhost" || strings.HasSuffix(host, ".localhost"):
		return true
	}
	if h, _, err := net.SplitHostPort(s.cfg.Listen); err == nil && strings.EqualFold(strings.TrimSuffix(h, "."), host) {
		return true
	}
	for _, a := range s.cfg.AllowedHosts {
		if strings.EqualFold(strings.TrimSuffix(a, "."), host) {
			return true
		}
	}
	return false
}
