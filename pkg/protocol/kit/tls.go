package kit

import (
	"bytes"
	"errors"
	"io"
	"net"

	"github.com/vaurien-go/vaurien/pkg/chaos"
)

// ClientTLS makes the client side TLS from here on, for a protocol that
// negotiates TLS inside its exchange (chaos.ProtocolSpec.InnerTLS): Start
// calls it once it has accepted the client's request for TLS and flushed
// that answer. The session completes the handshake with the route's tls
// block; the client's Reader then reads plainly, as a TLS connection has
// no descriptor of its own.
func (o *Opening) ClientTLS() error { return o.startTLS(true) }

// BackendTLS makes the backend side TLS from here on, once the backend
// accepted the protocol's request for TLS, with the route's backend_tls
// block.
func (o *Opening) BackendTLS() error { return o.startTLS(false) }

// readAhead is a connection whose first bytes were already read.
type readAhead struct {
	net.Conn
	r io.Reader
}

func (r *readAhead) Read(p []byte) (int, error) { return r.r.Read(p) }

func (c *conn[R]) startTLS(client bool) error {
	u, ok := c.s.(chaos.TLSUpgrader)
	if !ok {
		return errors.New("tls: the session cannot speak TLS")
	}
	if !client {
		if c.br.Buffered() > 0 {
			// They would be read as plain text.
			return errors.New("tls: the backend sent bytes before the handshake, after agreeing to TLS")
		}
		tc, err := u.ClientTLS(c.ctx, c.backend)
		if err != nil {
			return err
		}
		c.backend = tc
		c.br.attach(tc)
		c.bw.dst = tc
		return nil
	}
	// A client may send its hello right after its request for TLS, without
	// waiting (MySQL's SSLRequest has no answer): what was read ahead is
	// the handshake's start.
	conn := c.client
	if c.cr.Buffered() > 0 {
		ahead := bytes.NewReader(bytes.Clone(c.cr.Bytes()))
		conn = &readAhead{c.client, io.MultiReader(ahead, c.client)}
		c.cr.r = c.cr.w
	}
	tc, err := u.ServerTLS(c.ctx, conn)
	if err != nil {
		return err
	}
	c.client = tc
	c.cr.attach(tc)
	c.cw.dst = tc
	return nil
}

// attach makes the Reader, empty, read nc, plainly.
func (r *Reader) attach(nc net.Conn) {
	r.release()
	r.src, r.rc = nc, nil
}
