package mysql

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
)

// tap is a test relay that keeps what each of its connections carried, so
// that the framing can be checked against real clients and a real server.
// With hide set, it takes those capability bits out of the server's
// greeting, so that a client that would use them does not.
type tap struct {
	Addr  string
	ln    net.Listener
	hide  uint64
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns []*tapped
}

// tapped is one connection's bytes, each direction whole.
type tapped struct {
	toServer, toClient bytes.Buffer
}

func newTap(t *testing.T, backend string, hide uint64) *tap {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tp := &tap{Addr: ln.Addr().String(), ln: ln, hide: hide}
	tp.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", backend)
			if err != nil {
				c.Close()
				continue
			}
			rec := &tapped{}
			tp.mu.Lock()
			tp.conns = append(tp.conns, rec)
			tp.mu.Unlock()
			var one sync.WaitGroup
			one.Go(func() {
				tp.greet(s, c, rec)
				io.Copy(io.MultiWriter(c, &lockedWriter{&tp.mu, &rec.toClient}), s)
				c.(*net.TCPConn).CloseWrite()
			})
			one.Go(func() {
				io.Copy(io.MultiWriter(s, &lockedWriter{&tp.mu, &rec.toServer}), c)
				s.(*net.TCPConn).CloseWrite()
			})
			tp.wg.Go(func() {
				one.Wait()
				c.Close()
				s.Close()
			})
		}
	})
	t.Cleanup(func() { ln.Close(); tp.wg.Wait() })
	return tp
}

// greet relays the server's greeting with the hidden capabilities taken
// out.
func (tp *tap) greet(s, c net.Conn, rec *tapped) {
	var h [headerLen]byte
	if _, err := io.ReadFull(s, h[:]); err != nil {
		return
	}
	n, _ := header(h[:])
	p := make([]byte, n)
	if _, err := io.ReadFull(s, p); err != nil {
		return
	}
	if g, err := parseGreeting(p); err == nil && tp.hide != 0 {
		at := g.capsAt
		binary.LittleEndian.PutUint16(p[at:], binary.LittleEndian.Uint16(p[at:])&^uint16(tp.hide))
		up := at + 5
		binary.LittleEndian.PutUint16(p[up:], binary.LittleEndian.Uint16(p[up:])&^uint16(tp.hide>>16))
	}
	msg := append(h[:], p...)
	c.Write(msg)
	tp.mu.Lock()
	rec.toClient.Write(msg)
	tp.mu.Unlock()
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// done waits for every connection to end and returns their bytes.
func (tp *tap) done() []*tapped {
	tp.ln.Close()
	tp.wg.Wait()
	return tp.conns
}

// walked is what framing one recorded connection found.
type walked struct {
	caps      uint64   // agreed
	authTurns int      // server packets during authentication
	commands  []string // command names, keywords for statements
	infiles   int      // LOCAL INFILE exchanges
	longest   int      // the longest payload, in chunks
	results   int      // replies that carried more results
}

// cursor reads chunks from a recorded stream.
type cursor struct {
	b   []byte
	off int
}

func (c *cursor) end() bool { return c.off == len(c.b) }

// chunk returns the next chunk's length and head.
func (c *cursor) chunk() (int, []byte, error) {
	if len(c.b)-c.off < headerLen {
		return 0, nil, fmt.Errorf("stream ends at byte %d inside a header", c.off)
	}
	n, _ := header(c.b[c.off:])
	if len(c.b)-c.off-headerLen < n {
		return 0, nil, fmt.Errorf("stream ends at byte %d inside a chunk of %d bytes", c.off, n)
	}
	head := c.b[c.off+headerLen : c.off+headerLen+min(n, peekLen)]
	c.off += headerLen + n
	return n, head, nil
}

// payload returns a whole payload's first chunk's head and its number of
// chunks.
func (c *cursor) payload() ([]byte, int, error) {
	start := c.off
	chunks := 0
	for {
		n, _, err := c.chunk()
		if err != nil {
			return nil, 0, err
		}
		chunks++
		if n < maxChunk {
			first, _ := header(c.b[start:])
			return c.b[start+headerLen : start+headerLen+first], chunks, nil
		}
	}
}

// walk frames one recorded connection the way the proxy does: greeting,
// login, authentication, then each command and its reply. Both streams
// must be used up exactly.
func walk(rec *tapped) (walked, error) {
	var w walked
	cl, sv := &cursor{b: rec.toServer.Bytes()}, &cursor{b: rec.toClient.Bytes()}
	p, _, err := sv.payload()
	if err != nil {
		return w, err
	}
	g, err := parseGreeting(p)
	if err != nil {
		return w, err
	}
	if p, _, err = cl.payload(); err != nil {
		return w, err
	}
	l, err := parseLogin(p)
	if err != nil {
		return w, err
	}
	w.caps = agreed(g.caps, l.caps)
auth:
	for {
		p, _, err := sv.payload()
		if err != nil {
			return w, fmt.Errorf("authentication: %w", err)
		}
		w.authTurns++
		switch authNext(p) {
		case authOK:
			break auth
		case authFailed:
			return w, fmt.Errorf("authentication failed: %q", p)
		case authClient:
			if _, _, err := cl.payload(); err != nil {
				return w, fmt.Errorf("authentication: %w", err)
			}
		}
	}
	var r reply
	for !cl.end() {
		p, chunks, err := cl.payload()
		if err != nil {
			return w, err
		}
		w.longest = max(w.longest, chunks)
		code := p[0]
		name := commandName(code)
		if code == comQuery {
			sql, _ := statement(p[:min(len(p), 1+maxText)], w.caps)
			name = keyword(sql)
		}
		w.commands = append(w.commands, name)
		switch code {
		case comQuit, comStmtClose, comStmtSendLongData:
			continue
		}
		r.begin(code, w.caps)
		for {
			n, head, err := sv.chunk()
			if err != nil {
				return w, fmt.Errorf("reply to %s: %w", name, err)
			}
			s, err := r.next(n, head)
			if err != nil {
				return w, fmt.Errorf("reply to %s: %w", name, err)
			}
			if s == stepDone {
				break
			}
			if r.phase == phaseFirst && r.status&statusMoreResults != 0 && s == stepMore {
				w.results++
			}
			if s == stepInfile {
				w.infiles++
				for {
					n, _, err := cl.chunk()
					if err != nil {
						return w, fmt.Errorf("LOCAL INFILE data: %w", err)
					}
					if n == 0 {
						break
					}
				}
				r.infileDone()
			}
		}
	}
	if !sv.end() {
		return w, fmt.Errorf("the server sent %d bytes after the last reply: %q", len(sv.b)-sv.off, sv.b[sv.off:])
	}
	return w, nil
}
