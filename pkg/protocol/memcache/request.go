package memcache

import (
	"bytes"
	"math"

	"github.com/vaurien-go/vaurien/pkg/chaos"
)

// kind says how many answers memcached sends to a request.
type kind uint8

const (
	kindOne    kind = iota // exactly one answer (which may span several lines)
	kindNone               // classic noreply: memcached sends nothing, not even errors
	kindQuiet              // meta command with the q flag: zero or one answer
	kindNoop               // mn: always answers MN; ends a run of quiet requests
	kindQuit               // quit: no answer, memcached closes the connection
	kindStream             // watch, lru_crawler metadump: the connection leaves request/response
)

const (
	maxKey    = 250 // KEY_MAX_LENGTH: memcached reads no data block for a longer key
	maxTokens = 24  // MAX_TOKENS: the 24th token is the rest of the line
)

// request is what a request line says.
type request struct {
	cmd   *command
	kind  kind
	data  int64 // the data block's length, without its CRLF; -1 for none
	drain bool  // a get naming a key over 250 bytes: see the package doc
}

// command describes a command name. Its Request is shared by every
// connection (behaviors only read it): a known command allocates nothing.
type command struct {
	class  class
	kind   kind // of a well-formed request, noreply aside
	lo, hi int  // the token counts (memcached's) at which a noreply counts
	req    *chaos.Request
}

type class uint8

const (
	classOther class = iota
	classGet
	classStorage
	classCas
	classSlabs // noreply only for slabs automove
	classLruCrawler
	classMeta
	classMetaSet
)

var commands = map[string]*command{}

func init() {
	get := command{class: classGet}
	store := command{class: classStorage, lo: 6, hi: 7}
	arith := command{lo: 4, hi: 5} // incr, decr, touch; delete's optional 0 counts too
	oneArg := command{lo: 3, hi: 4}
	anyNoreply := command{lo: 3, hi: maxTokens}
	meta := command{class: classMeta}
	for name, c := range map[string]command{
		"get": get, "gets": get, "gat": get, "gats": get, "bget": get,
		"set": store, "add": store, "replace": store, "append": store, "prepend": store,
		"cas":  {class: classCas, lo: 7, hi: 8},
		"incr": arith, "decr": arith, "touch": arith, "delete": arith,
		"flush_all": {lo: 2, hi: 4},
		"verbosity": oneArg, "cache_memlimit": oneArg,
		"slabs": {class: classSlabs, lo: 4, hi: maxTokens},
		"lru":   anyNoreply, "extstore": anyNoreply, "refresh_certs": anyNoreply,
		"lru_crawler": {class: classLruCrawler},
		"watch":       {kind: kindStream},
		"quit":        {kind: kindQuit},
		"mn":          {kind: kindNoop},
		"mg":          meta, "md": meta, "ma": meta, "ms": {class: classMetaSet},
		"me": {}, "stats": {}, "version": {}, "shutdown": {}, "misbehave": {}, "debugtime": {},
		"": {}, // an empty line, which memcached answers with ERROR
	} {
		c.req = &chaos.Request{Command: name}
		commands[name] = &c
	}
}

// maxUnknownName bounds the Command reported for a name memcached does not
// know, so that a garbage line does not become a huge label.
const maxUnknownName = 64

// tokenize splits a command line the way memcached's tokenize_command
// does: on single spaces only, at most maxTokens-1 tokens, the rest of the
// line left over (more is true then).
func tokenize(line []byte, toks *[maxTokens][]byte) (n int, more bool) {
	for i, j := 0, 0; ; i = j {
		for i < len(line) && line[i] == ' ' {
			i++
		}
		if i == len(line) {
			return n, false
		}
		if n == maxTokens-1 {
			return n, true
		}
		for j = i; j < len(line) && line[j] != ' '; j++ {
		}
		toks[n] = line[i:j]
		n++
	}
}

// commandLine strips the terminator ("\n", and a "\r" before it, which
// memcached keeps on a bare "\r\n": ERROR either way) and cuts the line at
// a NUL byte, where memcached's C strings end.
func commandLine(line []byte) []byte {
	if l, ok := bytes.CutSuffix(line, []byte{'\n'}); ok {
		line = bytes.TrimSuffix(l, []byte{'\r'})
	}
	if i := bytes.IndexByte(line, 0); i >= 0 {
		line = line[:i]
	}
	return line
}

// parseRequest classifies one request line (with its terminator) as
// memcached would: a line it rejects still gets one answer (ERROR or
// CLIENT_ERROR), and a storage command it rejects before reading the data
// block has none, as memcached reads the block as further commands. A line
// with more tokens than the tokenizer takes is beyond every count checked.
func parseRequest(line []byte) request {
	line = commandLine(line)
	var toks [maxTokens][]byte
	n, _ := tokenize(line, &toks)
	c, ok := commands[string(toks[0])]
	if !ok {
		c = &command{req: &chaos.Request{Command: string(toks[0][:min(len(toks[0]), maxUnknownName)])}}
	}
	r := request{cmd: c, kind: c.kind, data: -1}
	ntokens := n + 1 // memcached's count, terminal token included
	counted := ntokens >= c.lo && ntokens <= c.hi
	// noreply is memcached's set_noreply_maybe: the last token it saw.
	if counted && string(toks[n-1]) == "noreply" && (c.class != classSlabs || string(toks[1]) == "automove") {
		r.kind = kindNone
	}
	switch c.class {
	case classGet:
		r.drain = hasLongKey(line)
	case classStorage, classCas:
		_, exptime := strtol32(toks[3])
		if counted && len(toks[1]) <= maxKey && strtoull(toks[2]) && exptime && (c.class != classCas || strtoull(toks[5])) {
			r.data = dataLen(toks[4])
		}
	case classLruCrawler:
		if ntokens == 4 && (string(toks[1]) == "metadump" || string(toks[1]) == "mgdump") {
			r.kind = kindStream
		}
	case classMeta, classMetaSet:
		// Quiet when any flag starts with q, all that memcached looks at.
		flags := 2
		if c.class == classMetaSet {
			flags = 3
			if ntokens >= 4 && ntokens <= 20 && len(toks[1]) <= maxKey {
				r.data = dataLen(toks[2])
			}
		}
		for i := flags; i < n; i++ {
			if toks[i][0] == 'q' {
				r.kind = kindQuiet
				break
			}
		}
	}
	return r
}

// hasLongKey reports whether a get line names a key longer than memcached
// accepts, anywhere in the line (memcached reads past 23 keys in batches).
func hasLongKey(line []byte) bool {
	n := 0
	for _, b := range line {
		if b == ' ' {
			n = 0
		} else if n++; n > maxKey {
			return true
		}
	}
	return false
}

// dataLen is a data block's length as memcached reads it, -1 when it
// rejects the token and reads no block.
func dataLen(tok []byte) int64 {
	if v, ok := strtol32(tok); ok && v >= 0 && v <= math.MaxInt32-2 {
		return int64(v)
	}
	return -1
}

// The number parsers below mirror memcached's safe_strtol, safe_strtoul and
// safe_strtoull (C locale): they decide whether it reads a data block, so a
// difference would split the stream elsewhere than the server does.

func cSpace(b byte) bool { return b == ' ' || (b >= '\t' && b <= '\r') }

// cNumber scans a token like strtoull: white space, a sign, digits, then
// the end or white space; ok is false otherwise or beyond 64 bits (ERANGE).
func cNumber(s []byte) (mag uint64, neg, ok bool) {
	for len(s) > 0 && cSpace(s[0]) {
		s = s[1:]
	}
	if len(s) > 0 && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	i := 0
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		d := uint64(s[i] - '0')
		if mag > (math.MaxUint64-d)/10 {
			return 0, false, false
		}
		mag = mag*10 + d
	}
	return mag, neg, i > 0 && (i == len(s) || cSpace(s[i]))
}

// strtol32 is safe_strtol: strtol into a 64-bit long, then stored into an
// int32 without a range check (so "4294967301" reads as 5, as in memcached).
func strtol32(s []byte) (int32, bool) {
	mag, neg, ok := cNumber(s)
	if !ok || mag > 1<<63 || (mag == 1<<63 && !neg) {
		return 0, false
	}
	if neg {
		mag = -mag
	}
	return int32(mag), true
}

// strtoull is safe_strtoull (and safe_strtoul on a 64-bit long): a negated
// value is accepted unless it reads as negative.
func strtoull(s []byte) bool {
	mag, neg, ok := cNumber(s)
	return ok && (!neg || int64(-mag) >= 0)
}
