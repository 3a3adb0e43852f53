// Package httpproto owns the http protocol: it frames HTTP/1.0 and
// HTTP/1.1 on both sides of a connection and applies the behavior mix once
// per request.
//
// Framing. Request heads (at most 64 KiB a line and 1 MiB a head) are
// relayed byte for byte, their bodies (Content-Length or chunked, chunk-size
// lines and trailers included) streamed, never held; the rest of a body of
// 64 KiB or more moves by splice when no behavior needs to see it. A quiet
// connection holds no buffer and no parsing state. Responses are matched to
// requests in order, so pipelined requests are forwarded as they arrive:
// 1xx interim responses (100 Continue) are relayed at once, responses to
// HEAD and 204/304 have no body, others end at their Content-Length, their
// last chunk and trailers, or when the backend closes. Keep-alive follows
// the messages (HTTP/1.0 keep-alive included); after a response that closes
// the connection the client is given a moment to leave before its socket
// closes, so that no reset destroys that response. A 101 Switching
// Protocols response (WebSocket, h2c) or a 2xx answer to CONNECT turns the
// connection into a raw relay. With overwrite_host_header the Host field of
// every request names the backend (one is added when a request has none;
// an absolute-form target keeps its own authority). The backend is dialed
// when the client connects, even for a client whose requests all fail.
//
// The unit of a draw is one request. What each fault looks like:
//   - error: the request (and its body) is read and not forwarded; the
//     client gets a complete 500, 501, 502 or 503 page (or the behavior's
//     status, message and headers) with Connection: close, after the
//     responses to the requests before it. With inject the request is
//     forwarded and up to 100 bytes in the middle of the response body are
//     changed, lengths kept (a response without a body is relayed as is).
//   - the others act as on every protocol-aware route (docs/behaviors.md).
//
// Requests framed strictly. A request whose framing the backend could read
// otherwise than the proxy is how requests get smuggled past it, so, as
// RFC 9112 asks of an intermediary, the proxy forwards none of it, answers
// 400 and closes the connection (after the responses to the requests
// before it) for: Content-Length with Transfer-Encoding; a Content-Length
// that is not one field of decimal digits ("5, 5" included, which RFC 9110
// lets a recipient reject); a Transfer-Encoding whose codings do not end
// in one chunked, or in an HTTP/1.0 request; whitespace before a colon; a
// header or trailer line without a colon; obsolete line folding; NUL or a
// bare CR in a field value; a request line that is not "METHOD target
// HTTP/x.y" (checked as its bytes arrive, so that a TLS ClientHello is
// answered at once); a chunk size that is not hexadecimal or exceeds 2^62.
// An HTTP major version other than 1 is answered 505, a head over the
// limits 414 or 431. The answer's text says what was wrong, and each
// counts as a connection refused for bad_request. The chunks that came
// with a head are checked before it goes out; after a malformed line in a
// body that comes later the backend gets nothing but the end of the
// stream, and the client the 400 instead of the backend's response (unless
// that response began: then the connection is closed).
//
// Fallback. A response the proxy cannot frame (not HTTP/1.x, a malformed
// head, chunk or length, a head over the limits) is relayed as it comes
// until the backend closes, and bytes the backend sends with no request in
// flight as they come: the client sees what it would without the proxy.
//
// The connection runs on the protocol kit (pkg/protocol/kit), which owns
// the buffers, the queue, the draws and faults, the idle timeout and the
// close. A request is queued before its body is sent, so that a 100
// Continue or an early answer reaches the client while the body is awaited
// (a request a to_backend filter acts on is queued once through it).
package httpproto

import (
	"context"

	"github.com/vaurien-go/vaurien/pkg/chaos"
	"github.com/vaurien-go/vaurien/pkg/protocol/kit"
)

var options = append(chaos.Options{
	{Name: "overwrite_host_header", Kind: chaos.Bool, Default: false,
		Doc: "rewrite the Host header of every request with the backend address (host:port)"},
}, chaos.OriginalProtocolOptions(
	"messages are streamed whatever their size",
	"HTTP keep-alive follows what the client and the backend say, as HTTP/1.1 wants")...)

func init() {
	chaos.RegisterProtocol(chaos.ProtocolSpec{
		Name: "http",
		Doc: "HTTP/1.0 and HTTP/1.1, framed on both sides: Content-Length and chunked bodies " +
			"streamed byte for byte, HEAD, 1xx, keep-alive and pipelining, Upgrade and CONNECT " +
			"switching to a raw relay. The mix is drawn once per request; error answers a real " +
			"5xx response (random 500-503 unless the behavior sets a status) without reaching the backend. " +
			"Requests are framed as strictly as RFC 9112 asks of an intermediary: one whose framing a backend " +
			"could read otherwise (Content-Length with Transfer-Encoding, a Content-Length list, obs-fold, " +
			"NUL or CR in a field, a bad chunk size...) is answered 400 and its connection closed, an unknown " +
			"HTTP version 505.",
		Options: options,
		Example: "route \"api\" {\n  listen   = \"127.0.0.1:8000\"\n  backend  = \"127.0.0.1:8080\"\n  protocol = \"http\"\n" +
			"  protocol_options {\n    overwrite_host_header = true\n  }\n}",
		New: func(v chaos.Values) (chaos.Protocol, error) {
			return &protocol{overwriteHost: v.Bool("overwrite_host_header")}, nil
		},
		ALPN: []string{"http/1.1"},
	})
}

type protocol struct{ overwriteHost bool }

func (p *protocol) Serve(ctx context.Context, s chaos.Session) error {
	return kit.Serve(ctx, s, newFraming(s, p.overwriteHost), kit.Options{ReplyDelayInTurn: true})
}
