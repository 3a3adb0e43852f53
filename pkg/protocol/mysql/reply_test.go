package mysql

import (
	"bytes"
	"testing"
)

func TestReplyEnds(t *testing.T) {
	const deprecate = capDeprecateEOF
	big := bytes.Repeat([]byte{'x'}, maxChunk+10)
	exact := bytes.Repeat([]byte{'y'}, maxChunk-1) // a row of one value whose payload is exactly maxChunk
	cases := []struct {
		name  string
		cmd   byte
		caps  uint64
		reply [][]byte
		want  step
	}{
		{"ok", comQuery, 0, [][]byte{pkt(1, ok(0))}, stepDone},
		{"err", comQuery, 0, [][]byte{pkt(1, errp())}, stepDone},
		{"ping", comPing, 0, [][]byte{pkt(1, ok(statusInTrans))}, stepDone},
		{"init db", comInitDB, 0, [][]byte{pkt(1, ok(0))}, stepDone},
		{"stmt reset", comStmtReset, 0, [][]byte{pkt(1, ok(0))}, stepDone},
		{"statistics starting like an error", comStatistics, 0, [][]byte{pkt(1, []byte("\xffUptime: 5"))}, stepDone},
		{"text resultset with EOFs", comQuery, 0, [][]byte{
			pkt(1, []byte{2}), pkt(2, col("a")), pkt(3, col("b")), pkt(4, eof(0)),
			pkt(5, row("1", "2")), pkt(6, row("3", "4")), pkt(7, eof(0))}, stepDone},
		{"text resultset without EOF", comQuery, deprecate, [][]byte{
			pkt(1, []byte{1}), pkt(2, col("a")), pkt(3, row("1")), pkt(4, okEOF(0))}, stepDone},
		{"empty resultset", comQuery, deprecate, [][]byte{pkt(1, []byte{1}), pkt(2, col("a")), pkt(3, okEOF(0))}, stepDone},
		{"error in the rows", comQuery, 0, [][]byte{
			pkt(1, []byte{1}), pkt(2, col("a")), pkt(3, eof(0)), pkt(4, row("1")), pkt(5, errp())}, stepDone},
		{"multi-results", comQuery, 0, [][]byte{
			pkt(1, []byte{1}), pkt(2, col("a")), pkt(3, eof(statusMoreResults)), pkt(4, row("1")), pkt(5, eof(statusMoreResults)),
			pkt(6, ok(statusMoreResults)),
			pkt(7, []byte{1}), pkt(8, col("b")), pkt(9, eof(0)), pkt(10, eof(0))}, stepDone},
		{"multi-results without EOF", comQuery, deprecate, [][]byte{
			pkt(1, []byte{1}), pkt(2, col("a")), pkt(3, row("1")), pkt(4, okEOF(statusMoreResults)),
			pkt(5, ok(statusMoreResults)), pkt(6, errp())}, stepDone},
		{"a row of more than 16 MiB starting with 0xfe", comQuery, deprecate, [][]byte{
			pkt(1, []byte{1}), pkt(2, col("a")), long(3, row(string(big))), pkt(5, okEOF(0))}, stepDone},
		{"a row of exactly 16 MiB - 1, then an empty chunk", comQuery, 0, [][]byte{
			pkt(1, []byte{1}), pkt(2, col("a")), pkt(3, eof(0)), long(4, append(appendLenenc(nil, uint64(len(exact)-3)), exact[:len(exact)-3]...)), pkt(6, eof(0))}, stepDone},
		{"progress reports before the reply", comQuery, mariadbProgress, [][]byte{
			pkt(1, []byte("\xff\xff\xff\x01\x02\x02\x00\x00\x00\x05ALTER")), pkt(2, []byte("\xff\xff\xff\x01\x02\x02\x00\x00\x00\x05ALTER")), pkt(3, ok(0))}, stepDone},
		{"an error 65535 without CLIENT_PROGRESS", comQuery, 0, [][]byte{pkt(1, []byte("\xff\xff\xff#HY000x"))}, stepDone},
		{"local infile", comQuery, 0, [][]byte{pkt(1, []byte("\xfbdata.csv"))}, stepInfile},
		{"prepare with params and columns", comStmtPrepare, 0, [][]byte{
			pkt(1, []byte("\x00\x01\x00\x00\x00\x01\x00\x02\x00\x00\x00\x00")),
			pkt(2, col("?")), pkt(3, col("?")), pkt(4, eof(0)), pkt(5, col("a")), pkt(6, eof(0))}, stepDone},
		{"prepare without EOF", comStmtPrepare, deprecate, [][]byte{
			pkt(1, []byte("\x00\x01\x00\x00\x00\x01\x00\x01\x00\x00\x00\x00")), pkt(2, col("?")), pkt(3, col("a"))}, stepDone},
		{"prepare of a statement without columns or params", comStmtPrepare, 0, [][]byte{
			pkt(1, []byte("\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"))}, stepDone},
		{"prepare refused", comStmtPrepare, 0, [][]byte{pkt(1, errp())}, stepDone},
		{"execute, binary rows start with 0x00", comStmtExecute, 0, [][]byte{
			pkt(1, []byte{1}), pkt(2, col("a")), pkt(3, eof(0)), pkt(4, []byte("\x00\x00\x01")), pkt(5, eof(0))}, stepDone},
		{"execute of an update", comStmtExecute, deprecate, [][]byte{pkt(1, ok(0))}, stepDone},
		{"execute opening a cursor", comStmtExecute, 0, [][]byte{
			pkt(1, []byte{1}), pkt(2, col("a")), pkt(3, eof(statusCursorExists))}, stepDone},
		{"fetch", comStmtFetch, 0, [][]byte{pkt(1, []byte("\x00\x00\x01")), pkt(2, eof(statusLastRowSent))}, stepDone},
		{"field list", comFieldList, 0, [][]byte{pkt(1, col("a")), pkt(2, col("b")), pkt(3, eof(0))}, stepDone},
		{"MariaDB metadata skipped", comStmtExecute, mariadbCacheMetadata, [][]byte{
			pkt(1, []byte{1, 0}), pkt(2, eof(0)), pkt(3, []byte("\x00\x00\x01")), pkt(4, eof(0))}, stepDone},
		{"MariaDB metadata sent", comStmtExecute, mariadbCacheMetadata | deprecate, [][]byte{
			pkt(1, []byte{1, 1}), pkt(2, col("a")), pkt(3, []byte("\x00\x00\x01")), pkt(4, okEOF(0))}, stepDone},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := bytes.Join(c.reply, nil)
			// What follows the reply must not be taken for it.
			trailer := pkt(0, []byte("\x03SELECT 1"))
			var r reply
			r.begin(c.cmd, c.caps)
			end, s, err := frame(&r, append(in, trailer...))
			if err != nil {
				t.Fatalf("framing: %v (at byte %d of %d)", err, end, len(in))
			}
			if s != c.want || end != len(in) {
				t.Fatalf("the reply ends at byte %d with step %d, want %d with step %d", end, s, len(in), c.want)
			}
			// Cut anywhere before its end, the reply is not over.
			for _, cut := range []int{0, 3, len(in) / 2, len(in) - 1} {
				r.begin(c.cmd, c.caps)
				if _, s, err := frame(&r, in[:cut]); err == nil && s != stepMore {
					t.Fatalf("cut at byte %d, the reply ended with step %d", cut, s)
				}
			}
		})
	}
}

func TestReplyAfterInfile(t *testing.T) {
	var r reply
	r.begin(comQuery, 0)
	if _, s, err := frame(&r, pkt(1, []byte("\xfbf.csv"))); err != nil || s != stepInfile {
		t.Fatalf("got step %d, %v; want the infile step", s, err)
	}
	r.infileDone()
	in := append(pkt(4, ok(statusMoreResults)), pkt(5, ok(0))...)
	if end, s, err := frame(&r, in); err != nil || s != stepDone || end != len(in) {
		t.Fatalf("after the file: end %d step %d err %v, want %d, done", end, s, err, len(in))
	}
}

func TestReplyRefusesWhatIsNoReply(t *testing.T) {
	cases := []struct {
		name string
		cmd  byte
		in   []byte
	}{
		{"empty first packet", comQuery, pkt(1)},
		{"short prepare answer", comStmtPrepare, pkt(1, []byte{0, 1, 0})},
		{"prepare answered by rows", comStmtPrepare, pkt(1, []byte{3, 'a', 'b', 'c'})},
		{"definitions not ended by an EOF", comQuery, append(append(pkt(1, []byte{1}), pkt(2, col("a"))...), pkt(3, row("1"))...)},
		{"an empty row", comQuery, append(append(append(pkt(1, []byte{1}), pkt(2, col("a"))...), pkt(3, eof(0))...), pkt(4)...)},
	}
	for _, c := range cases {
		var r reply
		r.begin(c.cmd, 0)
		if _, _, err := frame(&r, c.in); err == nil || err == errShort {
			t.Errorf("%s: framed without an error (%v)", c.name, err)
		}
	}
}
