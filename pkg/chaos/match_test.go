package chaos_test

import (
	"testing"

	"github.com/vaurien-go/vaurien/pkg/chaos"
)

func TestGlob(t *testing.T) {
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"/api/*", "/api/users", true},
		{"/api/*", "/api/users/7/orders", true},
		{"/api/*", "/apix", false},
		{"/api/*", "/api/", true},
		{"*", "", true},
		{"", "", true},
		{"", "x", false},
		{"/a?c", "/abc", true},
		{"/a?c", "/ac", false},
		{"*.json", "/x/y.json", true},
		{"*a*b*c", "xxaxxbxxc", true},
		{"*a*b*c", "xxaxxcxxb", false},
		{"exact", "exact", true},
		{"exact", "exactly", false},
		{"*FROM orders*", "select * from orders", false},
	}
	for _, tt := range tests {
		if got := chaos.Glob(tt.pattern, tt.s); got != tt.want {
			t.Errorf("Glob(%q, %q) = %v, want %v", tt.pattern, tt.s, got, tt.want)
		}
	}
}

func TestMatcher(t *testing.T) {
	hdr := func(h map[string]string) func(string) string {
		return func(n string) string { return h[n] }
	}
	post := &chaos.Request{Command: "POST", Path: "/api/orders", Header: hdr(map[string]string{"X-Tenant": "acme"})}
	get := &chaos.Request{Command: "GET", Path: "/api/orders"}
	set := &chaos.Request{Command: "SET"}
	update := &chaos.Request{Command: "UPDATE", SQL: "update Orders\nset paid = true", Database: "shop", User: "app"}
	tests := []struct {
		name string
		spec chaos.MatchSpec
		req  *chaos.Request
		want bool
	}{
		{"method and path", chaos.MatchSpec{Methods: []string{"post"}, Paths: []string{"/api/*"}}, post, true},
		{"other method", chaos.MatchSpec{Methods: []string{"POST"}, Paths: []string{"/api/*"}}, get, false},
		{"other path", chaos.MatchSpec{Paths: []string{"/admin/*"}}, post, false},
		{"any of paths", chaos.MatchSpec{Paths: []string{"/admin/*", "/api/*"}}, get, true},
		{"header glob", chaos.MatchSpec{Headers: map[string]string{"X-Tenant": "ac*"}}, post, true},
		{"header missing", chaos.MatchSpec{Headers: map[string]string{"X-Tenant": "ac*"}}, get, false},
		{"redis command", chaos.MatchSpec{Commands: []string{"get", "set"}}, set, true},
		{"redis other command", chaos.MatchSpec{Commands: []string{"GET"}}, set, false},
		{"tcp never matches", chaos.MatchSpec{Commands: []string{"GET"}}, nil, false},
		{"sql keyword", chaos.MatchSpec{Commands: []string{"update"}}, update, true},
		{"sql glob ignores case", chaos.MatchSpec{SQL: []string{"*ORDERS*SET*"}}, update, true},
		{"sql glob misses", chaos.MatchSpec{SQL: []string{"*FROM orders*"}}, update, false},
		{"database and user", chaos.MatchSpec{Databases: []string{"sh*"}, Users: []string{"app"}}, update, true},
		{"other user", chaos.MatchSpec{Users: []string{"APP"}}, update, false},
		{"other database", chaos.MatchSpec{Databases: []string{"billing"}}, update, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := tt.spec.Matcher()
			if err != nil {
				t.Fatal(err)
			}
			if got := m(tt.req); got != tt.want {
				t.Fatalf("match %v on %+v = %v, want %v", tt.spec, tt.req, got, tt.want)
			}
		})
	}
	if m, err := (chaos.MatchSpec{}).Matcher(); m != nil || err != nil {
		t.Fatalf("an empty spec gives matcher %v, %v; want nil (match all)", m != nil, err)
	}
	for _, bad := range []chaos.MatchSpec{{Paths: []string{"api/*"}}, {Headers: map[string]string{"": "x"}}, {Commands: []string{" "}}} {
		if _, err := bad.Matcher(); err == nil {
			t.Errorf("Matcher(%+v) accepted an invalid spec", bad)
		}
	}
}

func TestGlobFold(t *testing.T) {
	for _, tt := range []struct {
		pattern, s string
		want       bool
	}{
		{"*FROM orders*", "select * from ORDERS where id = 1", true},
		{"select ?", "SELECT 1", true},
		{"*[*", "a[", true},
		{"abc", "abd", false},
		{"@", "`", false}, // letters only: '@' and '`' differ by the case bit
	} {
		if got := chaos.GlobFold(tt.pattern, tt.s); got != tt.want {
			t.Errorf("GlobFold(%q, %q) = %v, want %v", tt.pattern, tt.s, got, tt.want)
		}
	}
}

func FuzzGlob(f *testing.F) {
	f.Add("/api/*", "/api/users")
	f.Add("*a*b*c*", "aaabbbccc")
	f.Fuzz(func(t *testing.T, pattern, s string) {
		chaos.Glob(pattern, s) // must not panic or hang
		if !chaos.Glob(s, s) && !containsMeta(s) {
			t.Fatalf("a literal pattern does not match itself: %q", s)
		}
	})
}

func containsMeta(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '*' || s[i] == '?' {
			return true
		}
	}
	return false
}
