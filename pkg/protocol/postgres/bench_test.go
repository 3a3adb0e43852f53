package postgres

import (
	"io"
	"testing"

	"github.com/vaurien-go/vaurien/pkg/protocol/kit"
)

// loop reads the same bytes over and over: a client or server that never
// stops.
type loop struct {
	b   []byte
	off int
}

func (l *loop) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		k := copy(p[n:], l.b[l.off:])
		n += k
		l.off = (l.off + k) % len(l.b)
	}
	return n, nil
}

// pgbenchUpdate is a statement of pgbench's TPC-B transaction.
const pgbenchUpdate = "UPDATE pgbench_accounts SET abalance = abalance + -2961 WHERE aid = 415603;"

// BenchmarkExchange is the framing's share of one statement: the request
// framed and sent, its answer relayed up to ReadyForQuery, as a simple
// Query and as a prepared statement's Bind, Execute and Sync.
func BenchmarkExchange(b *testing.B) {
	answer := appendMessage(nil, 'C', []byte("UPDATE 1\x00"))
	answer = appendReadyForQuery(answer, txInBlock)
	bind := appendMessage(nil, msgBind, []byte("\x00P0_1\x00\x00\x00\x00\x02\x00\x00\x00\x05-2961\x00\x00\x00\x06415603\x00\x00"))
	bind = appendMessage(bind, msgExecute, []byte("\x00\x00\x00\x00\x00"))
	bind = appendMessage(bind, msgSync)
	for _, c := range []struct {
		name    string
		request []byte
	}{
		{"simple", appendMessage(nil, msgQuery, []byte(pgbenchUpdate+"\x00"))},
		{"prepared", bind},
	} {
		b.Run(c.name, func(b *testing.B) {
			f := &framing{p: &protocol{}, started: true}
			// The statement the Bind names, as its Parse made it.
			f.tracker.first(msgParse, []byte("P0_1\x00"+pgbenchUpdate+"\x00\x00\x00"))
			in := kit.NewReader(&loop{b: c.request}, bufSize)
			back := kit.NewReader(&loop{b: answer}, bufSize)
			var x kit.Exchange[exchange]
			b.ReportAllocs()
			for b.Loop() {
				x = kit.Exchange[exchange]{}
				if err := f.Request(in, &x); err != nil {
					b.Fatal(err)
				}
				if x.Req == nil || x.Req.Command != "UPDATE" {
					b.Fatalf("drawn as %+v", x.Req)
				}
				if err := f.Send(in, io.Discard, &x); err != nil {
					b.Fatal(err)
				}
				if err := f.Reply(back, io.Discard, &x); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
