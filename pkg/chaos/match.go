package chaos

import (
	"fmt"
	"sort"
	"strings"
)

// MatchSpec limits a behavior to matching requests on protocol-aware
// routes. Every field that is set must match; within a list, any entry
// may. Names compare case-insensitively; paths, header values, SQL text,
// databases and users are globs where * matches any run of characters
// (slashes and line breaks included) and ? one. SQL globs ignore case, as
// SQL keywords do; database and user names are compared as sent.
type MatchSpec struct {
	Methods   []string          `json:"method,omitempty"`   // HTTP methods
	Paths     []string          `json:"path,omitempty"`     // HTTP path globs, e.g. "/api/*"
	Headers   map[string]string `json:"header,omitempty"`   // HTTP header name → value glob
	Commands  []string          `json:"command,omitempty"`  // Redis or memcache command names, SQL statement keywords
	SQL       []string          `json:"sql,omitempty"`      // SQL text globs, e.g. "*FROM orders*"
	Databases []string          `json:"database,omitempty"` // database name globs (postgres)
	Users     []string          `json:"user,omitempty"`     // user name globs (postgres)
}

// IsZero reports whether the spec matches every request.
func (m MatchSpec) IsZero() bool {
	return len(m.Methods) == 0 && len(m.Paths) == 0 && len(m.Headers) == 0 && len(m.Commands) == 0 &&
		len(m.SQL) == 0 && len(m.Databases) == 0 && len(m.Users) == 0
}

// String renders the spec for logs and listings.
func (m MatchSpec) String() string {
	var parts []string
	add := func(k string, vs []string) {
		if len(vs) > 0 {
			parts = append(parts, k+"="+strings.Join(vs, "|"))
		}
	}
	add("method", m.Methods)
	add("path", m.Paths)
	add("command", m.Commands)
	add("sql", m.SQL)
	add("database", m.Databases)
	add("user", m.Users)
	names := make([]string, 0, len(m.Headers))
	for n := range m.Headers {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		parts = append(parts, "header "+n+"="+m.Headers[n])
	}
	return strings.Join(parts, " ")
}

// Matcher builds the request test of the spec, or nil when it matches all.
// Requests on raw tcp routes (nil) never match a non-empty spec.
func (m MatchSpec) Matcher() (func(*Request) bool, error) {
	if m.IsZero() {
		return nil, nil
	}
	for _, p := range m.Paths {
		if !strings.HasPrefix(p, "/") && p != "*" {
			return nil, fmt.Errorf("match path %q: want a path glob starting with /, such as \"/api/*\"", p)
		}
	}
	for n := range m.Headers {
		if n == "" || strings.ContainsAny(n, " :\r\n") {
			return nil, fmt.Errorf("match header %q: want a header name", n)
		}
	}
	names := append(append([]string(nil), m.Methods...), m.Commands...)
	for _, n := range names {
		if strings.TrimSpace(n) == "" {
			return nil, fmt.Errorf("match: an empty method or command name")
		}
	}
	spec := m
	return func(r *Request) bool {
		if r == nil {
			return false
		}
		if len(spec.Methods) > 0 && !anyFold(spec.Methods, r.Command) {
			return false
		}
		if len(spec.Commands) > 0 && !anyFold(spec.Commands, r.Command) {
			return false
		}
		if len(spec.Paths) > 0 && !anyGlob(spec.Paths, r.Path, false) {
			return false
		}
		if len(spec.SQL) > 0 && !anyGlob(spec.SQL, r.SQL, true) {
			return false
		}
		if len(spec.Databases) > 0 && !anyGlob(spec.Databases, r.Database, false) {
			return false
		}
		if len(spec.Users) > 0 && !anyGlob(spec.Users, r.User, false) {
			return false
		}
		for name, want := range spec.Headers {
			if r.Header == nil || !Glob(want, r.Header(name)) {
				return false
			}
		}
		return true
	}, nil
}

func anyFold(names []string, s string) bool {
	for _, n := range names {
		if strings.EqualFold(n, s) {
			return true
		}
	}
	return false
}

func anyGlob(globs []string, s string, fold bool) bool {
	for _, g := range globs {
		if glob(g, s, fold) {
			return true
		}
	}
	return false
}

// Glob reports whether s matches pattern, where * matches any run of
// characters (slashes included) and ? exactly one.
func Glob(pattern, s string) bool { return glob(pattern, s, false) }

// GlobFold is Glob with ASCII letters compared regardless of case.
func GlobFold(pattern, s string) bool { return glob(pattern, s, true) }

func glob(pattern, s string, fold bool) bool {
	// Iterative matching with backtracking to the last star: linear in
	// practice and never recursive, whatever the input.
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == s[i] || fold && lower(pattern[p]) == lower(s[i])):
			p++
			i++
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
