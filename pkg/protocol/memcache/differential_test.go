package memcache

import (
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/vaurien-go/vaurien/internal/testenv"
)

// randomScript writes n random requests, valid and not: storage commands
// whose length or numbers are off, noreply in and out of place, quiet meta
// commands, stray data blocks that memcached reads as commands, junk.
// Nothing in it depends on the clock, so two fresh servers answer alike.
func randomScript(r *rand.Rand, n int) string {
	pick := func(s ...string) string { return s[r.IntN(len(s))] }
	keys := []string{"a", "b", "c", "n", "q", strings.Repeat("k", 250), strings.Repeat("k", 251)}
	key := func() string { return keys[r.IntN(len(keys))] }
	// incr, decr and ma rewrite a value in place (padding it with spaces)
	// only when no unsent answer still holds the item, which depends on
	// memcached's timing: they get keys of their own that nothing reads.
	counter := func() string { return pick("ctr", "ctr2") }
	// A get naming a key over 250 bytes makes memcached drop the unsent
	// answers of the requests before it, which depends on its timing; the
	// proxy prevents it (see TestOverlongGetKeyLosesNothing).
	getKey := func() string { return keys[r.IntN(len(keys)-1)] }
	data := func() string {
		const alphabet = "ab01 \r\n"
		b := make([]byte, r.IntN(20))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		return string(b)
	}
	// length gives a data length field for value v: right mostly, else off.
	length := func(v string) string {
		switch r.IntN(12) {
		case 0:
			return fmt.Sprint(len(v) + 1)
		case 1:
			return pick("x", "-1", "", "+0", "2147483646")
		case 2:
			return fmt.Sprint(int64(len(v)) + 1<<32) // memcached truncates it back to len(v)
		}
		return fmt.Sprint(len(v))
	}
	var b strings.Builder
	for range n {
		switch r.IntN(10) {
		case 0, 1, 2: // classic storage
			cmd := pick("set", "add", "replace", "append", "prepend", "cas")
			v := data()
			k := key()
			if r.IntN(5) == 0 {
				k = counter()
				v = pick("0", "7", "123", "0001", "x")
			}
			fmt.Fprintf(&b, "%s %s %s %s %s", cmd, k, pick("0", "5", "-1", "x", "4294967296"), pick("0", "1000", "x"), length(v))
			if cmd == "cas" || r.IntN(8) == 0 {
				fmt.Fprintf(&b, " %s", pick("1", "2", "3", "x", "99"))
			}
			if r.IntN(3) == 0 {
				b.WriteString(" noreply")
			}
			if r.IntN(15) == 0 {
				b.WriteString(" extra")
			}
			fmt.Fprintf(&b, "\r\n%s\r\n", v)
		case 3: // retrieval
			cmd := pick("get", "gets", "gat 1000", "gats 0", "gat x", "get")
			b.WriteString(cmd)
			for range r.IntN(4) {
				b.WriteString(" " + getKey())
			}
			b.WriteString("\r\n")
		case 4: // arithmetic, touch, delete, flush, verbosity
			switch r.IntN(5) {
			case 0:
				fmt.Fprintf(&b, "%s %s %s", pick("incr", "decr"), counter(), pick("1", "100", "x", "-1"))
			case 1:
				fmt.Fprintf(&b, "touch %s %s", key(), pick("0", "1000", "x"))
			case 2:
				fmt.Fprintf(&b, "delete %s%s", key(), pick("", " 0", " 5"))
			case 3:
				b.WriteString(pick("flush_all", "flush_all 0", "flush_all x", "flush_all 0 0"))
			case 4:
				b.WriteString(pick("verbosity 0", "verbosity", "verbosity x"))
			}
			if r.IntN(3) == 0 {
				b.WriteString(" noreply")
			}
			b.WriteString("\r\n")
		case 5, 6, 7: // meta
			cmd := pick("mg", "mg", "ms", "md", "ma", "mn", "mx")
			k := key()
			if cmd == "ma" {
				k = counter()
			}
			fmt.Fprintf(&b, "%s %s", cmd, k)
			v := data()
			if cmd == "ms" {
				b.WriteString(" " + length(v))
			}
			for range r.IntN(4) {
				b.WriteString(" " + pick("v", "q", "q", "k", "s", "f", "c", "O123", "T0", "N0", "J1", "D2", "MD", "ME", "MA", "MR", "I", "qq", "Z"))
			}
			b.WriteString("\r\n")
			if cmd == "ms" {
				fmt.Fprintf(&b, "%s\r\n", v)
			}
		case 8:
			b.WriteString(pick("mn", "mn", "version", "mn q") + "\r\n")
		case 9: // junk
			b.WriteString(pick("", " ", "x", "GET a", "bogus words", "\t", "get\ta", "set", "ms", "mg") + "\r\n")
		}
	}
	return b.String()
}

// TestDifferential replays random pipelines against a memcached directly
// and through the proxy: every byte of every answer must match, and every
// request must be drawn and reported once. This is what proves that the
// framing splits the stream exactly where memcached does, noreply and
// quiet requests included.
func TestDifferential(t *testing.T) {
	direct := testenv.Memcached(t)
	behind := testenv.Memcached(t)
	p := startProxy(t, behind.Addr, nil)
	for seed := range uint64(diffSeeds) {
		in := randomScript(rand.New(rand.NewPCG(seed, 7)), 600)
		// memcached closes without sending the answers it holds when the
		// input ends inside a data block, and which ones it had sent depends
		// on timing: complete the block.
		for endsIncomplete(in) {
			in += "\r\n"
		}
		want := script(t, direct.Addr, in)
		drawn, exchanged := len(p.Drawn()), p.Exchanges.Load()
		var got string
		if seed%2 == 0 {
			got = script(t, p.Addr, in)
		} else {
			// Small writes, so that the proxy reads requests in pieces.
			got = chunkedScript(t, p.Addr, in, rand.New(rand.NewPCG(seed, 8)))
		}
		if got != want {
			i := 0
			for i < len(got) && i < len(want) && got[i] == want[i] {
				i++
			}
			lo := max(0, i-200)
			t.Fatalf("seed %d: answers differ at byte %d\nproxy:  %q\ndirect: %q", seed, i, got[lo:min(len(got), i+100)], want[lo:min(len(want), i+100)])
		}
		p.WaitServed(t)
		d, ex := len(p.Drawn())-drawn, p.Exchanges.Load()-exchanged
		if int64(d) != ex {
			t.Errorf("seed %d: drew %d requests, reported %d exchanges", seed, d, ex)
		}
	}
	if len(p.Errors()) > 0 {
		t.Errorf("Serve returned %v", p.Errors())
	}
}

// chunkedScript is script with the input written in small random pieces.
func chunkedScript(t *testing.T, addr, input string, r *rand.Rand) string {
	c := dial(t, addr)
	go func() {
		for len(input) > 0 {
			n := min(len(input), 1+r.IntN(64))
			if _, err := io.WriteString(c, input[:n]); err != nil {
				return
			}
			input = input[n:]
		}
		c.CloseWrite()
	}()
	out, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read answers: %v", err)
	}
	return string(out)
}

// endsIncomplete reports whether a script's last request claims a data
// block longer than what follows it.
func endsIncomplete(script string) bool {
	for len(script) > 0 {
		i := strings.IndexByte(script, '\n')
		if i < 0 {
			return true
		}
		r := parseRequest([]byte(script[:i+1]))
		script = script[i+1:]
		if r.data >= 0 {
			if int64(len(script)) < r.data+2 {
				return true
			}
			script = script[r.data+2:]
		}
	}
	return false
}

// diffSeeds is how many random pipelines TestDifferential replays.
var diffSeeds = 30
