package memcache

import (
	"strings"
	"testing"
)

func TestParseRequest(t *testing.T) {
	long := strings.Repeat("k", 251)
	for _, tc := range []struct {
		line    string
		command string
		kind    kind
		data    int64
	}{
		// storage commands
		{"set k 0 0 5\r\n", "set", kindOne, 5},
		{"set k 0 0 5\n", "set", kindOne, 5},
		{"set  k  0 0 5 \r\n", "set", kindOne, 5},
		{"set k 0 0 5 noreply\r\n", "set", kindNone, 5},
		{"add k 1 2 0\r\n", "add", kindOne, 0},
		{"replace k 0 0 3 noreply\r\n", "replace", kindNone, 3},
		{"append k 0 0 3\r\n", "append", kindOne, 3},
		{"prepend k 0 0 3\r\n", "prepend", kindOne, 3},
		{"cas k 0 0 3 17\r\n", "cas", kindOne, 3},
		{"cas k 0 0 3 17 noreply\r\n", "cas", kindNone, 3},
		{"cas k 0 0 3\r\n", "cas", kindOne, -1},           // too few tokens: ERROR, block read as commands
		{"cas k 0 0 3 x\r\n", "cas", kindOne, -1},         // bad cas unique
		{"set k 0 0\r\n", "set", kindOne, -1},             // ERROR
		{"set k 0 0 5 noreply x\r\n", "set", kindOne, -1}, // too many tokens: ERROR, noreply not seen
		{"set k 0 0 noreply\r\n", "set", kindNone, -1},    // noreply seen, bad length: silent CLIENT_ERROR
		{"set k 0 0 -1\r\n", "set", kindOne, -1},
		{"set k 0 0 2147483645\r\n", "set", kindOne, 2147483645},
		{"set k 0 0 2147483646\r\n", "set", kindOne, -1}, // beyond INT_MAX-2
		{"set k 0 0 4294967301\r\n", "set", kindOne, 5},  // memcached truncates to int32
		{"set k 0 0 99999999999999999999\r\n", "set", kindOne, -1},
		{"set k 0 0 +5\r\n", "set", kindOne, 5},
		{"set k 0 0 5x\r\n", "set", kindOne, -1},
		{"set k 0 0 5\t\r\n", "set", kindOne, 5},
		{"set k x 0 5\r\n", "set", kindOne, -1},
		{"set k -1 0 5\r\n", "set", kindOne, -1}, // strtoul wraps to a negative long with a '-': rejected
		{"set k -0 0 5\r\n", "set", kindOne, 5},
		{"set k 0 x 5\r\n", "set", kindOne, -1},
		{"set " + long + " 0 0 5\r\n", "set", kindOne, -1},
		{"set " + long + " 0 0 5 noreply\r\n", "set", kindNone, -1},
		{"set k 0 0 5\x00 noreply\r\n", "set", kindOne, 5},
		{"SET k 0 0 5\r\n", "SET", kindOne, -1},
		// retrieval
		{"get a b c\r\n", "get", kindOne, -1},
		{"gets a\r\n", "gets", kindOne, -1},
		{"gat 10 a b\r\n", "gat", kindOne, -1},
		{"gats 10 a\r\n", "gats", kindOne, -1},
		{"get\r\n", "get", kindOne, -1},
		{"get a noreply\r\n", "get", kindOne, -1},
		// other classic commands and their noreply
		{"incr k 1\r\n", "incr", kindOne, -1},
		{"incr k 1 noreply\r\n", "incr", kindNone, -1},
		{"decr k noreply\r\n", "decr", kindNone, -1},
		{"incr k 1 noreply x\r\n", "incr", kindOne, -1},
		{"touch k 10 noreply\r\n", "touch", kindNone, -1},
		{"delete k\r\n", "delete", kindOne, -1},
		{"delete k noreply\r\n", "delete", kindNone, -1},
		{"delete k 0 noreply\r\n", "delete", kindNone, -1},
		{"delete k 5 noreply\r\n", "delete", kindNone, -1},
		{"delete k 0 0 noreply\r\n", "delete", kindOne, -1},
		{"flush_all\r\n", "flush_all", kindOne, -1},
		{"flush_all noreply\r\n", "flush_all", kindNone, -1},
		{"flush_all 10 noreply\r\n", "flush_all", kindNone, -1},
		{"flush_all 10 10 noreply\r\n", "flush_all", kindOne, -1},
		{"verbosity 1 noreply\r\n", "verbosity", kindNone, -1},
		{"verbosity noreply\r\n", "verbosity", kindNone, -1},
		{"verbosity\r\n", "verbosity", kindOne, -1},
		{"cache_memlimit 100 noreply\r\n", "cache_memlimit", kindNone, -1},
		{"slabs automove 1 noreply\r\n", "slabs", kindNone, -1},
		{"slabs reassign 1 2\r\n", "slabs", kindOne, -1},
		{"lru mode flat noreply\r\n", "lru", kindNone, -1},
		{"stats\r\n", "stats", kindOne, -1},
		{"stats slabs noreply\r\n", "stats", kindOne, -1},
		{"version\r\n", "version", kindOne, -1},
		{"quit\r\n", "quit", kindQuit, -1},
		{"watch\r\n", "watch", kindStream, -1},
		{"lru_crawler metadump all\r\n", "lru_crawler", kindStream, -1},
		{"lru_crawler crawl all\r\n", "lru_crawler", kindOne, -1},
		// meta
		{"mg k v\r\n", "mg", kindOne, -1},
		{"mg k v q\r\n", "mg", kindQuiet, -1},
		{"mg k qq\r\n", "mg", kindQuiet, -1},
		{"mg q v\r\n", "mg", kindOne, -1}, // the key is q, not a flag
		{"md k q\r\n", "md", kindQuiet, -1},
		{"ma k q D5\r\n", "ma", kindQuiet, -1},
		{"ms k 5\r\n", "ms", kindOne, 5},
		{"ms k 5 q T10\r\n", "ms", kindQuiet, 5},
		{"ms k S5\r\n", "ms", kindOne, -1}, // the old syntax: memcached rejects, reads no block
		{"ms k\r\n", "ms", kindOne, -1},
		{"ms k -5 q\r\n", "ms", kindQuiet, -1},
		{"ms " + long + " 5\r\n", "ms", kindOne, -1},
		{"ms k 5" + strings.Repeat(" T1", 16) + "\r\n", "ms", kindOne, 5},
		{"ms k 5" + strings.Repeat(" T1", 17) + "\r\n", "ms", kindOne, -1}, // more than memcached's 20 tokens
		{"mn\r\n", "mn", kindNoop, -1},
		{"mn q\r\n", "mn", kindNoop, -1},
		{"me k\r\n", "me", kindOne, -1},
		{"mx k\r\n", "mx", kindOne, -1},
		// junk
		{"\r\n", "", kindOne, -1},
		{"\n", "", kindOne, -1},
		{"   \r\n", "", kindOne, -1},
		{"x\r\n", "x", kindOne, -1},
		{"GET / HTTP/1.1\r\n", "GET", kindOne, -1},
		{strings.Repeat("z", 100) + "\r\n", strings.Repeat("z", 64), kindOne, -1},
	} {
		r := parseRequest([]byte(tc.line))
		if r.cmd.req.Command != tc.command || r.kind != tc.kind || r.data != tc.data {
			t.Errorf("%q: got command %q kind %d data %d, want %q %d %d",
				tc.line, r.cmd.req.Command, r.kind, r.data, tc.command, tc.kind, tc.data)
		}
	}
}

func TestTokenize(t *testing.T) {
	var toks [maxTokens][]byte
	n, more := tokenize([]byte("  a  b c "), &toks)
	if n != 3 || more || string(toks[0]) != "a" || string(toks[2]) != "c" {
		t.Fatalf("got %d %v %q", n, more, toks[:n])
	}
	n, more = tokenize([]byte(strings.Repeat("t ", 30)), &toks)
	if n != maxTokens-1 || !more {
		t.Fatalf("long line: got %d tokens, more %v", n, more)
	}
	n, more = tokenize([]byte(strings.Repeat("t ", maxTokens-1)), &toks)
	if n != maxTokens-1 || more {
		t.Fatalf("23 tokens: got %d tokens, more %v", n, more)
	}
}

func TestNumbers(t *testing.T) {
	for _, tc := range []struct {
		s     string
		l     int32
		lok   bool
		ullok bool
	}{
		{"0", 0, true, true},
		{"5", 5, true, true},
		{"+5", 5, true, true},
		{"-5", -5, true, false}, // strtoull wraps "-5" to a value negative as signed, with a '-': rejected
		{" 7", 7, true, true},
		{"\t7", 7, true, true},
		{"7\t", 7, true, true},
		{"7\tx", 7, true, true},
		{"7x", 0, false, false},
		{"", 0, false, false},
		{"-", 0, false, false},
		{"x", 0, false, false},
		{"4294967301", 5, true, true},
		{"9223372036854775807", -1, true, true},
		{"9223372036854775808", 0, false, true},
		{"-9223372036854775808", 0, true, false},
		{"-0", 0, true, true},
		{"18446744073709551615", 0, false, true},
		{"18446744073709551616", 0, false, false},
	} {
		l, lok := strtol32([]byte(tc.s))
		if lok != tc.lok || (lok && l != tc.l) {
			t.Errorf("strtol32(%q) = %d, %v; want %d, %v", tc.s, l, lok, tc.l, tc.lok)
		}
		if got := strtoull([]byte(tc.s)); got != tc.ullok {
			t.Errorf("strtoull(%q) = %v, want %v", tc.s, got, tc.ullok)
		}
	}
}
