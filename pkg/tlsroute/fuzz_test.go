package tlsroute

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// byteConn is a connection that reads from a fixed input and keeps what
// is written.
type byteConn struct {
	in  *bytes.Reader
	out bytes.Buffer
}

func (c *byteConn) Read(p []byte) (int, error)       { return c.in.Read(p) }
func (c *byteConn) Write(p []byte) (int, error)      { return c.out.Write(p) }
func (c *byteConn) Close() error                     { return nil }
func (c *byteConn) LocalAddr() net.Addr              { return nil }
func (c *byteConn) RemoteAddr() net.Addr             { return nil }
func (c *byteConn) SetDeadline(time.Time) error      { return nil }
func (c *byteConn) SetReadDeadline(time.Time) error  { return nil }
func (c *byteConn) SetWriteDeadline(time.Time) error { return nil }

// FuzzSendAlert feeds tls_handshake_fail's reading of the client's first
// record whatever a client may send: it never panics, and it answers with
// the alert only after a whole handshake record.
func FuzzSendAlert(f *testing.F) {
	f.Add([]byte{0x16, 0x03, 0x01, 0x00, 0x05, 1, 0, 0, 1, 0})
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	f.Add([]byte{0x16, 0x03, 0x01, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, in []byte) {
		c := &byteConn{in: bytes.NewReader(in)}
		err := sendAlert(c, 40)
		var inj *InjectedError
		sent := c.out.Len() > 0
		if sent != errors.As(err, &inj) {
			t.Fatalf("sent %d bytes, error %v", c.out.Len(), err)
		}
		if sent {
			n := int(in[3])<<8 | int(in[4])
			if in[0] != 0x16 || len(in) < 5+n || !bytes.Equal(c.out.Bytes(), []byte{0x15, 3, 3, 0, 2, 2, 40}) {
				t.Fatalf("answered %x to %x", c.out.Bytes(), in)
			}
		}
		if errors.Is(err, io.EOF) && len(in) >= 5 && in[0] != 0x16 {
			t.Fatalf("a non-handshake record read on: %v", err)
		}
	})
}
