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
	r, w, nc, handshake := &c.br, &c.bw, &c.backend, u.ClientTLS
	if client {
		r, w, nc, handshake = &c.cr, &c.cw, &c.client, u.ServerTLS
	}
	conn := *nc
	if r.Buffered() > 0 {
		if !client {
			// They would be read as plain text.
			return errors.New("tls: the backend sent bytes before the handshake, after agreeing to TLS")
		}
		// A client may send its hello right after its request for TLS,
		// without waiting (MySQL's SSLRequest has no answer): what was
		// read ahead is the handshake's start.
		conn = &readAhead{conn, io.MultiReader(bytes.NewReader(bytes.Clone(r.Bytes())), conn)}
		r.r = r.w
	}
	tc, err := handshake(c.ctx, conn)
	if err != nil {
		return err
	}
	// The Reader, empty, reads tc plainly from here on.
	*nc = tc
	r.release()
	r.src, r.rc, w.dst = tc, nil, tc
	return nil
}
