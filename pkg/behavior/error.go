package behavior

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/textproto"
	"strings"
	"sync/atomic"

	"github.com/vaurien-go/vaurien/pkg/chaos"
)

// The original Vaurien's sizes for errors on raw streams.
const (
	replaceSize = 1000 // random bytes that replace the answer
	injectSize  = 100  // random bytes inserted into the answer
)

// errorOptions are error's options; transient takes them too.
var errorOptions = chaos.Options{
	{Name: "inject", Kind: chaos.Bool, Default: false,
		Doc: "corrupt the real answer with random bytes instead of replacing it"},
	{Name: "warmup", Kind: chaos.Int, Default: int64(0), Min: minOf(0), Max: chaos.Range(chaos.MaxInt),
		Doc: "number of draws let through untouched before errors start"},
	{Name: "status", Kind: chaos.Ints, Default: []int64{}, Min: minOf(400), Max: minOf(599),
		Doc: "HTTP statuses (400–599) to answer with, one picked at random per error; empty lets the protocol choose (500, 501, 502 or 503 for HTTP)"},
	{Name: "message", Kind: chaos.String, Default: "",
		Doc: "error text sent to the client (one line); empty lets the protocol choose"},
	{Name: "headers", Kind: chaos.Strings, Default: []string{},
		Doc: "extra headers for HTTP error responses, each written \"Name: value\""},
	{Name: chaos.ErrorCodeOption, Kind: chaos.String, Default: "",
		Doc: "on database routes, the error to answer: a preset of the route's protocol such as deadlock or serialization, or the database's own code (a SQLSTATE such as 40P01 on postgres, an error number such as 1213 on mysql); a code the route's protocol does not have is refused; empty takes the route's error_code (see docs/protocols.md)"},
}

func init() {
	chaos.RegisterBehavior(chaos.BehaviorSpec{
		Name: "error",
		Doc: "Answers with an error instead of the real answer. On protocol-aware routes, " +
			"where the unit is one request, the client gets the protocol's own error reply: " +
			"an HTTP error page with Connection: close (a status picked at random from " +
			"status, by default 500, 501, 502 or 503, with headers added), a Redis error " +
			"reply or a memcache SERVER_ERROR, carrying message when it is set. On a tcp " +
			"route, where the unit is the connection, the backend's first answer is " +
			"replaced by 1000 random bytes and the connection is closed; with inject = true, " +
			"100 random bytes are inserted in the middle of the first chunk of the real " +
			"answer and the rest is relayed untouched. warmup lets the first draws through " +
			"untouched; the count starts again whenever the route's mix is set.",
		Options: errorOptions,
		Example: `behavior "error" {
  percent = 5
  warmup  = 10
  status  = [502, 503]
  message = "backend overloaded"
  headers = ["Retry-After: 5"]
}`,
		New: func(v chaos.Values) (chaos.Behavior, error) {
			return newFailing(v, unlimited)
		},
	})
}

// unlimited is the agitate of error: it fails every draw after warmup.
const unlimited = -1

// failing is error and transient: it lets warmup draws through, then fails
// agitate draws (all of them for error), then lets everything through.
type failing struct {
	spec    chaos.ErrorSpec
	status  []int
	warmup  int64
	agitate int64 // unlimited for error
	drawn   atomic.Int64
	// settled is set once the counted phases are over, so that the hot
	// path stops writing to the shared counter.
	settled atomic.Bool
}

func newFailing(v chaos.Values, agitate int64) (*failing, error) {
	b := &failing{
		spec:    chaos.ErrorSpec{Inject: v.Bool("inject"), Message: v.String("message")},
		warmup:  v.Int("warmup"),
		agitate: agitate,
	}
	for _, s := range v.Ints("status") { // each within its declared 400–599
		b.status = append(b.status, int(s))
	}
	// The message ends up inside one-line protocol replies (RESP, memcache),
	// where a line break would forge a second reply.
	if strings.ContainsAny(b.spec.Message, "\r\n") {
		return nil, fmt.Errorf("option \"message\": %q spans several lines; it must be one line", b.spec.Message)
	}
	b.spec.Code = v.String(chaos.ErrorCodeOption)
	if !validCode(b.spec.Code) {
		return nil, fmt.Errorf("option \"code\": %q is not an error code; want a preset name such as \"deadlock\" or a code such as \"40P01\" (letters, digits and _)", b.spec.Code)
	}
	headers, err := parseHeaders(v.Strings("headers"))
	if err != nil {
		return nil, err
	}
	b.spec.Headers = headers
	return b, nil
}

// validCode reports whether s can name a database error: protocols look it
// up among their presets or read it as their own code, and neither has room
// for spaces or punctuation.
func validCode(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return len(s) <= 64
}

// parseHeaders reads "Name: value" entries into a map keyed by canonical
// header names. The map is shared, read-only, by every effect of the
// behavior.
func parseHeaders(entries []string) (map[string]string, error) {
	if len(entries) == 0 {
		return nil, nil
	}
	h := make(map[string]string, len(entries))
	for _, e := range entries {
		name, value, ok := strings.Cut(e, ":")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if !ok || !validHeaderName(name) {
			return nil, fmt.Errorf("option \"headers\": %q is not a header; write \"Name: value\"", e)
		}
		if strings.ContainsAny(value, "\r\n\x00") {
			return nil, fmt.Errorf("option \"headers\": the value of %q contains a line break", name)
		}
		h[textproto.CanonicalMIMEHeaderKey(name)] = value
	}
	return h, nil
}

// validHeaderName reports whether s is an HTTP token (RFC 9110 §5.6.2).
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// Effect passes or fails the draw according to its rank. Counting is exact
// under concurrency: each draw takes a distinct rank from the counter.
func (b *failing) Effect(u *chaos.Unit) chaos.Effect {
	if b.settled.Load() {
		if b.agitate == unlimited {
			return b.fail(u)
		}
		return chaos.Effect{}
	}
	n := b.drawn.Add(1)
	switch {
	case n <= b.warmup:
		return chaos.Effect{}
	case b.agitate == unlimited:
		b.settled.Store(true)
		return b.fail(u)
	case n-b.warmup <= b.agitate:
		return b.fail(u)
	default:
		b.settled.Store(true)
		return chaos.Effect{}
	}
}

// fail builds the error effect. Protocol-aware routes render Error and
// ignore the filter; a tcp route has no protocol to speak, so the filter
// does the original's random-bytes answer.
func (b *failing) fail(u *chaos.Unit) chaos.Effect {
	e := chaos.Effect{Fault: chaos.FaultError, Error: b.spec}
	if len(b.status) > 0 {
		e.Error.Status = b.status[u.Rand().IntN(len(b.status))]
	}
	if b.spec.Inject {
		e.ToClient = &injectFilter{rnd: filterRand(u)}
	} else {
		e.ToClient = &replaceFilter{rnd: filterRand(u)}
	}
	return e
}

// replaceFilter answers the backend's first chunk with random bytes in its
// place, then ends the connection.
type replaceFilter struct{ rnd *rand.Rand }

func (f *replaceFilter) Relay(_ context.Context, dst io.Writer, src io.Reader) error {
	bp := getBuf()
	defer putBuf(bp)
	buf := *bp
	n, err := src.Read(buf)
	for n == 0 && err == nil {
		n, err = src.Read(buf)
	}
	if n == 0 {
		// The backend ended without answering: there is nothing to replace.
		return endOf(err)
	}
	fillRandom(f.rnd, buf[:replaceSize])
	if err := write(dst, buf[:replaceSize]); err != nil {
		return err
	}
	return chaos.ErrClose
}

// injectFilter inserts random bytes in the middle of the backend's first
// chunk and relays the rest untouched.
type injectFilter struct{ rnd *rand.Rand }

func (f *injectFilter) Relay(_ context.Context, dst io.Writer, src io.Reader) error {
	bp := getBuf()
	defer putBuf(bp)
	buf := *bp
	// Leave room in the buffer for the inserted bytes.
	n, err := src.Read(buf[:len(buf)-injectSize])
	for n == 0 && err == nil {
		n, err = src.Read(buf[:len(buf)-injectSize])
	}
	if n == 0 {
		return endOf(err)
	}
	mid := n / 2
	copy(buf[mid+injectSize:], buf[mid:n])
	fillRandom(f.rnd, buf[mid:mid+injectSize])
	if err := write(dst, buf[:n+injectSize]); err != nil {
		return err
	}
	if err != nil {
		return endOf(err)
	}
	return copyRest(dst, src, buf)
}
