package mysql

import (
	"bytes"
	"testing"

	"github.com/vaurien-go/vaurien/pkg/protocol/kit"
)

// FuzzReply frames arbitrary server bytes as the reply to any command
// under any capabilities: no panic, and a reply never ends past the bytes
// it was given.
func FuzzReply(f *testing.F) {
	f.Add(byte(comQuery), uint64(0), pkt(1, ok(0)))
	f.Add(byte(comQuery), uint64(capDeprecateEOF), append(append(pkt(1, []byte{1}), pkt(2, col("a"))...), pkt(3, okEOF(0))...))
	f.Add(byte(comStmtPrepare), uint64(0), pkt(1, []byte("\x00\x01\x00\x00\x00\x01\x00\x01\x00\x00\x00\x00")))
	f.Add(byte(comStmtExecute), uint64(mariadbCacheMetadata), pkt(1, []byte{1, 0}))
	f.Add(byte(comQuery), uint64(mariadbProgress), pkt(1, []byte("\xff\xff\xff\x01")))
	f.Add(byte(comFieldList), uint64(0), pkt(1, []byte{0xfe, 0, 0, 0, 0}))
	f.Fuzz(func(t *testing.T, cmd byte, caps uint64, in []byte) {
		var r reply
		r.begin(cmd, caps)
		end, s, err := frame(&r, in)
		if end > len(in) {
			t.Fatalf("the reply ends at byte %d of %d", end, len(in))
		}
		if err == nil && s == stepMore {
			t.Fatalf("framing stopped with no end and no error")
		}
		if s == stepInfile {
			r.infileDone()
			frame(&r, in[end:])
		}
	})
}

// FuzzHandshake reads arbitrary greetings, logins and authentication
// packets: no panic, and clearing CLIENT_SSL changes one bit at most.
func FuzzHandshake(f *testing.F) {
	f.Add(greetingPayload(capProtocol41|capSSL|capLongPassword, "caching_sha2_password"))
	f.Add(greetingPayload(capProtocol41|mariadbCacheMetadata, "mysql_native_password"))
	f.Add(loginPayload(capProtocol41|capSecureConnection|capPluginAuthLenenc|capConnectWithDB, "app", "scramble", "shop"))
	f.Add(loginPayload(capProtocol41|capSSL, "", "", "")[:sslRequestLen])
	f.Add([]byte("\x01\x03"))
	f.Fuzz(func(t *testing.T, p []byte) {
		if g, err := parseGreeting(p); err == nil {
			before := append([]byte(nil), p...)
			g.clearSSL(p)
			diff := 0
			for i := range p {
				if p[i] != before[i] {
					diff++
				}
			}
			if diff > 1 {
				t.Fatalf("clearSSL changed %d bytes", diff)
			}
		}
		parseLogin(p)
		authNext(p)
	})
}

// FuzzCommand reads arbitrary command payloads: no panic, and the
// statement keyword is always one of the known set.
func FuzzCommand(f *testing.F) {
	for _, s := range []string{"\x03SELECT 1", "\x03/*!40101 SET NAMES utf8 */", "\x03-- x\nUPDATE t", "\x03\x00\x01BEGIN", "\x17\x01\x00\x00\x00", "\x03/*M!"} {
		f.Add([]byte(s), uint64(0))
		f.Add([]byte(s), uint64(capQueryAttributes))
	}
	f.Fuzz(func(t *testing.T, p []byte, caps uint64) {
		if len(p) == 0 {
			return
		}
		commandName(p[0])
		stmtID(p)
		sql, _ := statement(p, caps)
		if len(sql) > maxText {
			t.Fatalf("statement text of %d bytes", len(sql))
		}
		if k := keyword(sql); k != other && keywords[k] != k {
			t.Fatalf("keyword %q is not a known one", k)
		}
	})
}

// FuzzServe frames an arbitrary command stream from the client and an
// arbitrary reply stream from the server through the framing, as the kit
// drives it: no panic, and what reaches each side is a prefix of what was
// sent (nothing is invented outside an error fault).
func FuzzServe(f *testing.F) {
	f.Add(pkt(0, []byte("\x03SELECT 1")), append(append(pkt(1, []byte{1}), pkt(2, col("a"))...), pkt(3, okEOF(0))...), uint64(capDeprecateEOF|capProtocol41))
	f.Add(pkt(0, []byte("\x03LOAD DATA LOCAL INFILE 'x' INTO TABLE t")), pkt(1, []byte("\xfbx")), uint64(0))
	f.Add(append(pkt(0, []byte("\x16SELECT ?")), pkt(0, []byte("\x17\x01\x00\x00\x00\x00\x01\x00\x00\x00"))...),
		pkt(1, []byte("\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00")), uint64(0))
	f.Fuzz(func(t *testing.T, client, server []byte, caps uint64) {
		p, err := New("deadlock", "", "", tlsDisable)
		if err != nil {
			t.Fatal(err)
		}
		fr := &framing{p: p.(*protocol), caps: caps}
		cin := kit.NewReader(bytes.NewReader(client), bufSize)
		sin := kit.NewReader(bytes.NewReader(server), bufSize)
		var toServer, toClient bytes.Buffer
		for range 64 {
			var x kit.Exchange[exchange]
			if err := fr.Request(cin, &x); err != nil {
				break
			}
			if err := fr.Send(cin, &toServer, &x); err != nil {
				break
			}
			if x.Reply == kit.ReplyNone {
				continue
			}
			if err := fr.Reply(sin, &toClient, &x); err != nil {
				break
			}
		}
		if !bytes.HasPrefix(client, toServer.Bytes()) || !bytes.HasPrefix(server, toClient.Bytes()) {
			t.Fatalf("relayed bytes that were not sent: %q to the server, %q to the client", toServer.Bytes(), toClient.Bytes())
		}
	})
}
