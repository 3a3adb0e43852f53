package httpproto

import (
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/vaurien-go/vaurien/pkg/chaos"
)

var statusText = map[int]string{
	400: "Bad Request",
	401: "Unauthorized",
	403: "Forbidden",
	404: "Not Found",
	405: "Method Not Allowed",
	408: "Request Timeout",
	409: "Conflict",
	410: "Gone",
	413: "Content Too Large",
	414: "URI Too Long",
	418: "I'm a teapot",
	421: "Misdirected Request",
	425: "Too Early",
	429: "Too Many Requests",
	431: "Request Header Fields Too Large",
	500: "Internal Server Error",
	501: "Not Implemented",
	502: "Bad Gateway",
	503: "Service Unavailable",
	504: "Gateway Timeout",
	505: "HTTP Version Not Supported",
	507: "Insufficient Storage",
	511: "Network Authentication Required",
}

var statusDetail = map[int]string{
	414: "The request line is longer than this server accepts.",
	431: "The request's header fields are larger than this server accepts.",
	500: "The server met an internal error and could not complete the request.",
	501: "The server does not support the functionality the request needs.",
	502: "The gateway got an invalid response from the upstream server.",
	503: "The server cannot handle the request right now because it is overloaded or down for maintenance. Try again later.",
}

func reason(status int) string {
	switch s, ok := statusText[status]; {
	case ok:
		return s
	case status >= 500:
		return "Server Error"
	case status >= 400:
		return "Client Error"
	}
	return "Status " + strconv.Itoa(status)
}

// renderReply builds a complete response that closes the connection: the
// body is spec.Message (plain text) or an HTML page naming the status;
// spec.Headers are added, except the framing ones (Content-Length,
// Transfer-Encoding, Connection), which the proxy owns so that the client
// stays in sync. A response to HEAD carries the headers only.
func renderReply(status int, spec *chaos.ErrorSpec, headOnly bool) []byte {
	if spec == nil {
		spec = &chaos.ErrorSpec{}
	}
	text, code := reason(status), strconv.Itoa(status)
	content, ctype := spec.Message, "text/plain; charset=utf-8"
	if content == "" {
		content = "<!DOCTYPE html>\n<html><head><title>" + code + " " + text + "</title></head>\n<body><h1>" +
			text + "</h1>\n<p>" + statusDetail[status] + "</p>\n</body></html>\n"
		ctype = "text/html; charset=utf-8"
	}
	b := make([]byte, 0, 256+len(content))
	b = append(b, "HTTP/1.1 "+code+" "+text+"\r\n"...)
	for _, name := range slices.Sorted(maps.Keys(spec.Headers)) {
		value := spec.Headers[name]
		if !isToken([]byte(name)) || strings.ContainsAny(value, "\r\n") {
			continue
		}
		switch strings.ToLower(name) {
		case "content-length", "transfer-encoding", "connection":
			continue
		case "content-type":
			ctype = ""
		}
		b = append(b, name+": "+value+"\r\n"...)
	}
	if ctype != "" {
		b = append(b, "Content-Type: "+ctype+"\r\n"...)
	}
	b = append(b, "Content-Length: "+strconv.Itoa(len(content))+"\r\nConnection: close\r\n\r\n"...)
	if !headOnly {
		b = append(b, content...)
	}
	return b
}
