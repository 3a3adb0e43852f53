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
	var tc net.Conn
	var err error
	r, w, nc := c.cr, c.cw, &c.client
	if !client {
		r, w, nc = c.br, c.bw, &c.backend
		if r.Buffered() > 0 {
			// They would be read as plain text.
			return errors.New("tls: the backend sent bytes before the handshake, after agreeing to TLS")
		}
		tc, err = u.ClientTLS(c.ctx, c.backend)
	} else {
		// A client may send its hello right after its request for TLS,
		// without waiting (MySQL's SSLRequest has no answer): what was
		// read ahead is the handshake's start.
		conn := c.client
		if r.Buffered() > 0 {
			ahead := bytes.NewReader(bytes.Clone(r.Bytes()))
			conn = &readAhead{c.client, io.MultiReader(ahead, c.client)}
			r.r = r.w
		}
		tc, err = u.ServerTLS(c.ctx, conn)
	}
	if err != nil {
		return err
	}
	// The Reader, empty, reads tc plainly from here on.
	*nc = tc
	r.release()
	r.src, r.rc, w.dst = tc, nil, tc
	return nil
}
