package redis

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/vaurien-go/vaurien/pkg/chaos"
)

func newReader(in string, size int) *reader {
	return newFixedReader(strings.NewReader(in), size, DefaultMaxBulkLen)
}

// frameRequests frames every request of in with the client-side code and
// returns what was copied, the requests' commands and the error that
// stopped it.
func frameRequests(in string, size int) (string, []string, error) {
	r := newReader(in, size)
	var out bytes.Buffer
	var cmds []string
	var sc scan
	for {
		if _, err := r.scanRequest(&sc); err != nil {
			return out.String(), cmds, err
		}
		b, _ := r.Peek(sc.pos)
		cmds = append(cmds, request(sc.arg(b, 0)).Command)
		if err := r.copyRequest(&out, &sc); err != nil {
			return out.String(), cmds, err
		}
	}
}

func TestScanRequest(t *testing.T) {
	big := strings.Repeat("v", 100)
	for _, tc := range []struct {
		name, in string
		cmds     []string
		err      bool // a protocol error after the framed requests
	}{
		{"multibulk", "*2\r\n$3\r\nget\r\n$1\r\nk\r\n", []string{"GET"}, false},
		{"pipeline", command("SET", "k", "v") + command("GET", "k") + command("ping"), []string{"SET", "GET", "PING"}, false},
		{"inline", "PING\r\nset k v\nGET  k\r\n", []string{"PING", "SET", "GET"}, false},
		{"empty", "*0\r\n*-1\r\n\r\n  \r\n", []string{"", "", "", ""}, false},
		{"binary", command("SET", "k", "a\r\n$3\r\n*1\x00"), []string{"SET"}, false},
		{"larger than the buffer", command("SET", "k", big, big), []string{"SET"}, false},
		{"unknown command", command("FOO.BAR", "x"), []string{"FOO.BAR"}, false},
		{"not a bulk", "*1\r\n:1\r\n", nil, true},
		{"negative bulk", "*1\r\n$-1\r\n", nil, true},
		{"bulk over the limit", "*1\r\n$536870913\r\n", nil, true},
		{"no crlf", "*1\r\n$1\r\nabc", nil, true},
		{"no crlf after a large bulk", "*1\r\n$100\r\n" + big + "xx", nil, true},
		{"bad count", "*x\r\n", nil, true},
		{"count line too long", "*" + strings.Repeat("1", 40) + "\r\n", nil, true},
		{"length line too long", "*1\r\n$" + strings.Repeat("1", 40) + "\r\n", nil, true},
		{"inline longer than the buffer", strings.Repeat("x", 64) + "\r\n", nil, true},
		{"after a good one", command("PING") + "*1\r\n:1\r\n", []string{"PING"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, cmds, err := frameRequests(tc.in, 32)
			if tc.err {
				if !isProtocolError(err) {
					t.Fatalf("got %v, want a protocol error", err)
				}
			} else if err != io.EOF {
				t.Fatalf("got %v, want io.EOF", err)
			}
			if strings.Join(cmds, ",") != strings.Join(tc.cmds, ",") {
				t.Fatalf("commands %q, want %q", cmds, tc.cmds)
			}
			if !tc.err && out != tc.in {
				t.Fatalf("copied %q, want %q", out, tc.in)
			}
			if !strings.HasPrefix(tc.in, out) {
				t.Fatalf("copied %q, not a prefix of the input", out)
			}
		})
	}
}

// Every prefix of a request is incomplete, never an error, and nothing is
// copied before the request is whole.
func TestScanRequestPrefixes(t *testing.T) {
	in := command("SET", "key", "value") + "GET key\r\n"
	for i := range len(in) {
		out, _, err := frameRequests(in[:i], 64)
		if err != io.EOF {
			t.Fatalf("prefix %q: %v", in[:i], err)
		}
		if want := len(command("SET", "key", "value")); i < want && out != "" {
			t.Fatalf("prefix %q: copied %q", in[:i], out)
		}
	}
}

func TestScanArgs(t *testing.T) {
	for _, tc := range []struct {
		in   string
		argc int64
		args []string
	}{
		{command("CLIENT", "REPLY", "OFF"), 3, []string{"CLIENT", "REPLY", "OFF"}},
		{"client reply  skip\r\n", 3, []string{"client", "reply", "skip"}},
		{command("A", "B", "C", "D", "E"), 5, []string{"A", "B", "C", "D"}},
		{"a b c d e f\r\n", 6, []string{"a", "b", "c", "d"}},
	} {
		var sc scan
		sc.reset()
		done, err := sc.step([]byte(tc.in), DefaultMaxBulkLen, false)
		if !done || err != nil {
			t.Fatalf("%q: %v %v", tc.in, done, err)
		}
		if sc.argc != tc.argc {
			t.Errorf("%q: argc %d, want %d", tc.in, sc.argc, tc.argc)
		}
		for i, want := range tc.args {
			if got := string(sc.arg([]byte(tc.in), i)); got != want {
				t.Errorf("%q: arg %d = %q, want %q", tc.in, i, got, want)
			}
		}
	}
}

// walkAll frames every reply of in and returns what was copied.
func walkAll(in string, size int) (string, int, error) {
	r := newReader(in, size)
	var out bytes.Buffer
	n := 0
	for {
		if _, err := r.Peek(1); err == io.EOF {
			return out.String(), n, nil
		}
		if err := r.walk(&out, 1, nil); err != nil {
			return out.String(), n, err
		}
		n++
	}
}

func TestWalk(t *testing.T) {
	long := strings.Repeat("z", 200)
	nested := strings.Repeat("*1\r\n", 10000) + ":1\r\n"
	for _, tc := range []struct {
		name, in string
		values   int
	}{
		{"simple", "+OK\r\n-ERR bad\r\n:0\r\n:-12\r\n:-9223372036854775808\r\n:9223372036854775807\r\n", 6},
		{"bulk", "$0\r\n\r\n$3\r\na\r\n\r\n$-1\r\n", 3},
		{"bulk larger than the buffer", "$200\r\n" + long + "\r\n", 1},
		{"line longer than the buffer", "+" + long + "\r\n-" + long + "\r\n", 2},
		{"arrays", "*0\r\n*-1\r\n*2\r\n*1\r\n:1\r\n$1\r\nx\r\n", 3},
		{"nested deep", nested, 1},
		{"resp3 scalars", "_\r\n#t\r\n#f\r\n,3.14\r\n,inf\r\n,-nan\r\n(123456789012345678901234567890\r\n", 7},
		{"blob error and verbatim", "!3\r\nERR\r\n=9\r\ntxt:hello\r\n", 2},
		{"map set push", "%1\r\n$1\r\nk\r\n~2\r\n:1\r\n:2\r\n>2\r\n$7\r\nmessage\r\n_\r\n", 2},
		{"attribute belongs to its value", "|1\r\n+key\r\n:1\r\n$5\r\nvalue\r\n", 1},
		{"attribute inside an array", "*2\r\n|1\r\n+a\r\n+b\r\n:1\r\n:2\r\n", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, size := range []int{16, 4096} {
				out, n, err := walkAll(tc.in, size)
				if err != nil {
					t.Fatalf("buffer %d: %v", size, err)
				}
				if out != tc.in {
					t.Fatalf("buffer %d: copied %q", size, out)
				}
				if n != tc.values {
					t.Fatalf("buffer %d: %d values, want %d", size, n, tc.values)
				}
			}
		})
	}
}

func TestWalkErrors(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		eof      bool // cut short rather than invalid
	}{
		{"unknown type", "?\r\n", false},
		{"bare lf", "+OK\n", false},
		{"bad integer", ":1x\r\n", false},
		{"integer overflow", ":9223372036854775808\r\n", false},
		{"null with content", "_x\r\n", false},
		{"bad boolean", "#x\r\n", false},
		{"empty double", ",\r\n", false},
		{"bulk over the limit", "$536870913\r\n", false},
		{"huge bulk", "$99999999999999\r\n", false},
		{"negative bulk", "$-2\r\n", false},
		{"null blob error", "!-1\r\n", false},
		{"short verbatim", "=3\r\ntxt\r\n", false},
		{"negative map", "%-1\r\n", false},
		{"bulk without crlf", "$1\r\nab\r\n", false},
		{"length line too long", "*" + strings.Repeat("1", 40) + "\r\n", false},
		{"streamed string", "$?\r\n;4\r\nHell\r\n;0\r\n", false},
		{"truncated bulk", "$10\r\nabc", true},
		{"truncated array", "*3\r\n:1\r\n", true},
		{"truncated line", "+OK", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := walkAll(tc.in, 64)
			if tc.eof {
				if err != io.ErrUnexpectedEOF {
					t.Fatalf("got %v, want io.ErrUnexpectedEOF", err)
				}
				return
			}
			if !isProtocolError(err) {
				t.Fatalf("got %v, want a protocol error", err)
			}
		})
	}
}

func TestCorrupt(t *testing.T) {
	long := strings.Repeat("abcdefgh", 100)
	for _, tc := range []struct {
		name, in string
	}{
		{"bulk", "$11\r\nhello world\r\n"},
		{"one byte", "$1\r\nx\r\n"},
		{"streamed bulk", "$800\r\n" + long + "\r\n"},
		{"simple", "+PONG\r\n"},
		{"error", "-ERR wrong\r\n"},
		{"integer", ":-123456\r\n"},
		{"verbatim", "=14\r\ntxt:some words\r\n"},
		{"first string of an array", "*3\r\n$-1\r\n$0\r\n\r\n$4\r\nabcd\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newReader(tc.in, 64)
			var out bytes.Buffer
			var cor corrupter
			if err := r.walk(&out, 1, &cor); err != nil {
				t.Fatal(err)
			}
			got := out.String()
			if got == tc.in || len(got) != len(tc.in) {
				t.Fatalf("corrupted %q into %q", tc.in, got)
			}
			// The framing is intact: the corrupted reply frames the same.
			if back, n, err := walkAll(got, 64); err != nil || n != 1 || back != got {
				t.Fatalf("the corrupted reply %q does not frame: %v", got, err)
			}
			if strings.IndexByte("+-:", tc.in[0]) >= 0 && strings.ContainsAny(got[1:len(got)-2], "\r\n") {
				t.Fatalf("a line got a line break: %q", got)
			}
			if tc.in[0] == '=' && !strings.Contains(got, "txt:") {
				t.Fatalf("the verbatim format was damaged: %q", got)
			}
		})
	}
	// Nothing to damage: the reply passes intact.
	for _, in := range []string{"$-1\r\n", "_\r\n", "#t\r\n", ",1.5\r\n", "*0\r\n", "$0\r\n\r\n"} {
		r := newReader(in, 64)
		var out bytes.Buffer
		if err := r.walk(&out, 1, &corrupter{}); err != nil || out.String() != in {
			t.Errorf("%q became %q, %v", in, out.String(), err)
		}
	}
}

func TestPushKind(t *testing.T) {
	for _, tc := range []struct {
		in   string
		kind string
		done bool
	}{
		{">3\r\n$11\r\nunsubscribe\r\n_\r\n:0\r\n", "unsubscribe", true},
		{">3\r\n$12\r\npunsubscribe\r\n", "punsubscribe", true},
		{">2\r\n$10\r\ninvalidate\r\n*1\r\n", "invalidate", true},
		{">3\r\n$12\r\npunsubscrib", "", false},
		{">3\r\n$1", "", false},
		{">3\r\n", "", false},
		{">3", "", false},
		{">0\r\n+OK\r\n", "", true},          // no first element
		{">1\r\n+unsubscribe\r\n", "", true}, // not a bulk string
		{">1\r\n$13\r\n", "", true},          // longer than any kind looked for
		{">1\r\n$-1\r\n", "", true},
		{">x\r\n", "", true},
		{">1\r\n$x\r\n", "", true},
	} {
		kind, done := pushKind([]byte(tc.in))
		if string(kind) != tc.kind || done != tc.done {
			t.Errorf("pushKind(%q) = %q, %v; want %q, %v", tc.in, kind, done, tc.kind, tc.done)
		}
	}
}

func TestCommandName(t *testing.T) {
	for in, want := range map[string]string{
		"get": "GET", "GET": "GET", "hGetAll": "HGETALL", "restore-asking": "RESTORE-ASKING",
		"foo": "FOO", "": "", strings.Repeat("x", 30): strings.Repeat("X", 30),
	} {
		if got := request([]byte(in)).Command; got != want {
			t.Errorf("request(%q).Command = %q, want %q", in, got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { request([]byte("hgetall")) }); n != 0 {
		t.Errorf("naming a known command allocates %v times", n)
	}
}

func TestErrorLine(t *testing.T) {
	for in, want := range map[string]string{
		"ERR x":                   "ERR x",
		"-LOADING busy":           "LOADING busy",
		"READONLY a\r\nb\r\n":     "READONLY a  b",
		"":                        DefaultErrorMessage,
		"-\r\n":                   DefaultErrorMessage,
		"BUSY Redis is busy\nnow": "BUSY Redis is busy now",
	} {
		if got := errorLine(in); got != want {
			t.Errorf("errorLine(%q) = %q, want %q", in, got, want)
		}
	}
}

// The CLIENT REPLY state machine follows redis' client flags.
func TestReplyTracking(t *testing.T) {
	type step struct {
		k       kind
		expects bool
	}
	for name, steps := range map[string][]step{
		"off then on":     {{kReplyOff, false}, {kOther, false}, {kReplySkip, false}, {kOther, false}, {kReplyOn, true}, {kOther, true}},
		"skip":            {{kReplySkip, false}, {kOther, false}, {kOther, true}},
		"skip skip":       {{kReplySkip, false}, {kReplySkip, false}, {kOther, false}, {kOther, true}},
		"skip on":         {{kReplySkip, false}, {kReplyOn, true}, {kOther, true}},
		"skip empty":      {{kReplySkip, false}, {kEmpty, false}, {kOther, true}},
		"reset off":       {{kReplyOff, false}, {kReset, true}, {kOther, true}},
		"reset skip":      {{kReplySkip, false}, {kReset, false}, {kOther, true}},
		"multi":           {{kMulti, true}, {kReplyOff, true}, {kOther, true}, {kExec, true}, {kOther, true}},
		"skip into multi": {{kReplySkip, false}, {kMulti, false}, {kOther, true}, {kExec, true}},
	} {
		var c framing
		for i, s := range steps {
			if s.k != kEmpty {
				if got := c.expectsReply(s.k); got != s.expects {
					t.Errorf("%s: step %d: expects reply %v, want %v", name, i, got, s.expects)
				}
			}
			c.track(s.k)
		}
	}
}

func TestNew(t *testing.T) {
	p := New("", 0)
	if p.errMsg != DefaultErrorMessage || p.maxBulk != DefaultMaxBulkLen {
		t.Fatalf("defaults: %q %d", p.errMsg, p.maxBulk)
	}
	if _, _, err := chaos.NewProtocol("redis", map[string]any{"max_bulk_len": 0}); err == nil {
		t.Fatal("max_bulk_len 0 accepted")
	}
	if _, _, err := chaos.NewProtocol("redis", map[string]any{"buffer": 4096}); err != nil {
		t.Fatal(err)
	}
	var pe *ProtocolError
	if !errors.As(protoErr("x %d", 1), &pe) || pe.Error() != "resp protocol error: x 1" {
		t.Fatal("protoErr")
	}
}
