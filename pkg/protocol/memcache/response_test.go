package memcache

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/vaurien-go/vaurien/pkg/protocol/kit"
)

func TestFramerRelay(t *testing.T) {
	reply := []byte("SERVER_ERROR x\r\n")
	for _, tc := range []struct {
		name string
		in   string
		u    unit
		out  string // what is relayed
		rest string // what stays for the next record
		err  error
	}{
		{"line", "STORED\r\nEND\r\n", unit{}, "STORED\r\n", "END\r\n", nil},
		{"miss", "END\r\nX", unit{}, "END\r\n", "X", nil},
		{"values", "VALUE a 0 3\r\nabc\r\nVALUE b 5 0 7\r\n\r\nEND\r\nNEXT\r\n", unit{}, "VALUE a 0 3\r\nabc\r\nVALUE b 5 0 7\r\n\r\nEND\r\n", "NEXT\r\n", nil},
		{"value block holds END", "VALUE a 0 5\r\nEND\r\n\r\nEND\r\n", unit{}, "VALUE a 0 5\r\nEND\r\n\r\nEND\r\n", "", nil},
		{"value then error", "VALUE a 0 1\r\nx\r\nSERVER_ERROR out of memory\r\nN", unit{}, "VALUE a 0 1\r\nx\r\nSERVER_ERROR out of memory\r\n", "N", nil},
		{"va", "VA 2 f5 t-1\r\nhi\r\nHD\r\n", unit{}, "VA 2 f5 t-1\r\nhi\r\n", "HD\r\n", nil},
		{"va empty", "VA 0\r\n\r\nX", unit{}, "VA 0\r\n\r\n", "X", nil},
		{"stats", "STAT pid 1\r\nSTAT a b\r\nEND\r\nX", unit{}, "STAT pid 1\r\nSTAT a b\r\nEND\r\n", "X", nil},
		{"stats error", "STAT pid 1\r\nSERVER_ERROR oom\r\nX", unit{}, "STAT pid 1\r\nSERVER_ERROR oom\r\n", "X", nil},
		{"cachedump", "ITEM k [1 b; 0 s]\r\nEND\r\n", unit{}, "ITEM k [1 b; 0 s]\r\nEND\r\n", "", nil},
		{"detail dump", "PREFIX a get 1 hit 0 set 0 del 0\r\nEND\r\n", unit{}, "PREFIX a get 1 hit 0 set 0 del 0\r\nEND\r\n", "", nil},
		{"mn alone", "MN\r\nX", unit{}, "MN\r\n", "X", nil},
		{"run", "VA 1\r\nx\r\nNS\r\nMN\r\nX", unit{run: true}, "VA 1\r\nx\r\nNS\r\nMN\r\n", "X", nil},
		{"run swallowed", "HD\r\nMN\r\nX", unit{run: true, swallow: true}, "HD\r\n", "X", nil},
		{"empty run swallowed", "MN\r\nX", unit{run: true, swallow: true}, "", "X", nil},
		{"run with MN in a value", "VA 4\r\nMN\r\n\r\nMN\r\n", unit{run: true, swallow: true}, "VA 4\r\nMN\r\n\r\n", "", nil},
		{"corrupt no value", "STORED\r\nX", unit{corrupt: true, reply: reply}, "SERVER_ERROR x\r\n", "X", nil},
		{"corrupt miss", "END\r\nX", unit{corrupt: true, reply: reply}, "SERVER_ERROR x\r\n", "X", nil},
		{"corrupt stats", "STAT a 1\r\nEND\r\nX", unit{corrupt: true, reply: reply}, "SERVER_ERROR x\r\n", "X", nil},
		{"corrupt empty value", "VALUE a 0 0\r\n\r\nEND\r\nX", unit{corrupt: true, reply: reply}, "SERVER_ERROR x\r\n", "X", nil},
		{"corrupt silent run", "MN\r\nX", unit{run: true, swallow: true, corrupt: true, reply: reply}, "SERVER_ERROR x\r\n", "X", nil},
		{"corrupt failed run", "NS\r\nMN\r\nX", unit{run: true, swallow: true, corrupt: true, reply: reply}, "SERVER_ERROR x\r\n", "X", nil},
		{"corrupt run, client mn", "NS\r\nMN\r\nX", unit{run: true, corrupt: true, reply: reply}, "SERVER_ERROR x\r\nMN\r\n", "X", nil},
		{"bad size", "VALUE a 0 x\r\nabc\r\nEND\r\n", unit{}, "", "", errBadResponse},
		{"missing size", "VA\r\n", unit{}, "", "", nil}, // "VA" without a space is a plain line
		{"negative size", "VA -1\r\n", unit{}, "", "", errBadResponse},
		{"huge size", "VALUE a 0 99999999999\r\n", unit{}, "", "", errTooLarge},
		{"truncated value", "VALUE a 0 10\r\nabc", unit{}, "VALUE a 0 10\r\nabc", "", io.ErrUnexpectedEOF},
		{"truncated line", "STOR", unit{}, "", "", io.ErrUnexpectedEOF},
		{"eof", "", unit{}, "", "", io.EOF},
		{"long line", "STAT " + strings.Repeat("x", 64) + "\r\n", unit{}, "", "", errLongLine},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := strings.NewReader(tc.in)
			br := kit.NewReader(src, 64)
			f := framer{br: br}
			var out bytes.Buffer
			err := f.relay(&out, tc.u)
			if tc.name == "missing size" {
				if err != nil || out.String() != "VA\r\n" {
					t.Fatalf("got %q, %v", out.String(), err)
				}
				return
			}
			if !errors.Is(err, tc.err) {
				t.Fatalf("error %v, want %v", err, tc.err)
			}
			if tc.err != nil && tc.err != io.ErrUnexpectedEOF {
				return
			}
			if out.String() != tc.out {
				t.Fatalf("relayed %q, want %q", out.String(), tc.out)
			}
			if f.n != int64(out.Len()) {
				t.Fatalf("counted %d bytes, wrote %d", f.n, out.Len())
			}
			rest, _ := io.ReadAll(src)
			if left := string(br.Bytes()) + string(rest); left != tc.rest {
				t.Fatalf("left %q, want %q", left, tc.rest)
			}
		})
	}
}

func TestFramerCorruptsMiddle(t *testing.T) {
	for _, size := range []int{1, 5, 100, 101, 1000, 100000} {
		value := bytes.Repeat([]byte{'a'}, size)
		in := "VALUE k 0 " + itoa(size) + "\r\n" + string(value) + "\r\nEND\r\n"
		f := framer{br: kit.NewReader(strings.NewReader(in), 64)}
		var out bytes.Buffer
		if err := f.relay(&out, unit{corrupt: true, reply: []byte("X\r\n")}); err != nil {
			t.Fatal(err)
		}
		if out.Len() != len(in) {
			t.Fatalf("size %d: relayed %d bytes, want %d", size, out.Len(), len(in))
		}
		got := out.Bytes()[len(in)-size-7 : len(in)-7]
		k := min(size, injectBytes)
		lo := (size - k) / 2
		for i, b := range got {
			if b != 'a' && (i < lo || i >= lo+k) {
				t.Fatalf("size %d: byte %d changed, outside [%d, %d)", size, i, lo, lo+k)
			}
		}
		if !strings.HasSuffix(out.String(), "\r\nEND\r\n") {
			t.Fatalf("size %d: framing lost: %q", size, out.String()[out.Len()-10:])
		}
	}
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}

func TestCopyNNoAlloc(t *testing.T) {
	src := bytes.NewReader(make([]byte, 1<<20))
	f := framer{br: kit.NewReader(src, 4096)}
	allocs := testing.AllocsPerRun(10, func() {
		src.Seek(0, io.SeekStart)
		if err := f.copy(io.Discard, 1<<20); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("copy allocated %v times", allocs)
	}
}
