package kit

import (
	"errors"
	"net"

	"github.com/vaurien-go/vaurien/pkg/chaos"
)

// ClientTLS makes the client side TLS from here on, for a protocol that
// negotiates TLS inside its exchange (chaos.ProtocolSpec.InnerTLS): Start
// calls it once it has accepted the client's request for TLS and flushed
// that answer. The session completes the handshake with the route's tls
// block, and the client's Reader and Writer go on over the TLS
// connection, read plainly since it has no descriptor of its own.
func (o *Opening) ClientTLS() error { return o.startTLS(true) }

// BackendTLS makes the backend side TLS from here on, once the backend
// accepted the protocol's request for TLS, with the route's backend_tls
// block.
func (o *Opening) BackendTLS() error { return o.startTLS(false) }

// errTLSUnread is a side that sent more than the exchange that asks for
// TLS before the handshake: those bytes would be read as plain text.
var errTLSUnread = errors.New("tls: bytes arrived before the handshake, after the request for TLS")

func (c *conn[R]) startTLS(client bool) error {
	u, ok := c.s.(chaos.TLSUpgrader)
	if !ok {
		return errors.New("tls: the session cannot speak TLS")
	}
	var err error
	var tc net.Conn
	if client {
		if c.cr.Buffered() > 0 {
			return errTLSUnread
		}
		if tc, err = u.ServerTLS(c.ctx); err != nil {
			return err
		}
		c.client = tc
		c.cr.attach(tc)
		c.cw.dst = tc
		return nil
	}
	if c.br.Buffered() > 0 {
		return errTLSUnread
	}
	if tc, err = u.ClientTLS(c.ctx, c.backend); err != nil {
		return err
	}
	c.backend, c.q.backend = tc, tc
	c.br.attach(tc)
	c.bw.dst = tc
	return nil
}

// attach makes the Reader, empty, read nc, plainly.
func (r *Reader) attach(nc net.Conn) {
	r.release()
	r.src, r.rc = nc, nil
}
