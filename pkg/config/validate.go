package config

import (
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/vaurien-go/vaurien/pkg/chaos"
)

// Route names end up in API paths and metric label values, so they stay
// within characters that need no escaping in either.
var validRouteName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

func checkRouteName(name string) error {
	if !validRouteName.MatchString(name) || len(name) > 64 {
		return fmt.Errorf("route name %q is not valid", name)
	}
	return nil
}

// addrKind says which side of the proxy an address is on.
type addrKind int

const (
	listenAddr  addrKind = iota // may leave the host empty (all interfaces) and use port 0 (any)
	backendAddr                 // needs a host and a real port; DemoBackend is accepted
)

// checkAddress returns why s is not a usable address, or nil. The reason is
// a sentence fragment for diagnostic details.
func checkAddress(s string, kind addrKind) error {
	if kind == backendAddr && s == DemoBackend {
		return nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q is not a host:port address", s)
	}
	if strings.ContainsAny(host, " \t\r\n") {
		return fmt.Errorf("the host %q contains white space", host)
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || port == "" || port[0] == '+' {
		return fmt.Errorf("the port %q is not a number from 0 to 65535", port)
	}
	if kind == backendAddr {
		if host == "" {
			return fmt.Errorf("%q has no host", s)
		}
		if n == 0 {
			return fmt.Errorf("port 0 cannot be dialed")
		}
	}
	if host != "" && !validHost(host) {
		return fmt.Errorf("the host %q is neither an IP address nor a host name (letters, digits, '-' and '_' in dot-separated labels of at most 63 characters, 253 in all)", clip(host))
	}
	return nil
}

// CheckBackend returns why addr cannot be a route's backend, or nil: the
// check the file's backends get, for backends given at run time.
func CheckBackend(addr string) error {
	return checkAddress(addr, backendAddr)
}

// validHost reports whether host is an IP address or a DNS host name.
// Underscores are accepted: container and service names use them.
func validHost(host string) bool {
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	if len(host) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(host, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// clip shortens a value quoted in an error message.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

func isWildcard(host string) bool {
	return host == "" || host == "0.0.0.0" || host == "::"
}

// listenConflict reports whether two listen addresses cannot both be bound:
// the same port on the same host, or on a wildcard host. Port 0 asks the
// kernel for a free port, so it never conflicts.
func listenConflict(a, b string) bool {
	ha, pa, err1 := net.SplitHostPort(a)
	hb, pb, err2 := net.SplitHostPort(b)
	if err1 != nil || err2 != nil {
		return false
	}
	na, err1 := strconv.Atoi(pa)
	nb, err2 := strconv.Atoi(pb)
	if err1 != nil || err2 != nil || na == 0 || na != nb {
		return false
	}
	return strings.EqualFold(ha, hb) || isWildcard(ha) || isWildcard(hb)
}

// didYouMean returns " Did you mean "x"?" when name is a likely typo of one
// of the candidates, else "".
func didYouMean(name string, candidates []string) string {
	if s := chaos.Closest(name, candidates); s != "" {
		return fmt.Sprintf(" Did you mean %q?", s)
	}
	return ""
}

// quoteList renders names as "a", "b" and "c" (or "a", "b" or "c") for
// diagnostic details.
func quoteList(names []string, conj string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	switch len(q) {
	case 0:
		return "none"
	case 1:
		return q[0]
	}
	return strings.Join(q[:len(q)-1], ", ") + " " + conj + " " + q[len(q)-1]
}

func errorDiag(subject hcl.Range, summary, detail string, args ...any) *hcl.Diagnostic {
	return &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  summary,
		Detail:   fmt.Sprintf(detail, args...),
		Subject:  subject.Ptr(),
	}
}

// finish sorts diagnostics by position, so that users read them in file
// order, and turns them into the error Parse returns.
func finish(diags hcl.Diagnostics) error {
	if !diags.HasErrors() {
		return nil
	}
	sort.SliceStable(diags, func(i, j int) bool {
		a, b := diags[i].Subject, diags[j].Subject
		if a == nil || b == nil {
			return a != nil
		}
		if a.Filename != b.Filename {
			return a.Filename < b.Filename
		}
		return a.Start.Byte < b.Start.Byte
	})
	return slices.Clip(diags)
}

// unknownName explains a name that is not registered, for diagnostics.
func unknownName(what, name string, valid []string) string {
	if len(valid) == 0 {
		return fmt.Sprintf("There is no %s named %q, and this build registers no %ss.", what, name, what)
	}
	return fmt.Sprintf("There is no %s named %q.%s The valid %ss are %s.", what, name, didYouMean(name, valid), what, quoteList(valid, "and"))
}
