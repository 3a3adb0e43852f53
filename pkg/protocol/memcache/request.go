package memcache

import (
	"bytes"
	"math"

	"github.com/vaurien-go/vaurien/pkg/chaos"
)

// kind says how many responses the backend sends for a request. The reader
// decides it from the request line alone, mirroring memcached's own parser,
// so that the response side knows what to expect without looking ahead.
type kind uint8

const (
	kindOne    kind = iota // exactly one response (which may span several lines)
	kindNone               // classic noreply: memcached sends nothing, not even errors
	kindQuiet              // meta command with the q flag: zero or one response
	kindNoop               // mn: always answers MN; ends a run of quiet requests
	kindQuit               // quit: no response, memcached closes the connection
	kindStream             // watch, lru_crawler metadump: the connection leaves request/response
)

// maxKey is memcached's KEY_MAX_LENGTH: a longer key is a format error, and
// memcached then does not read the data block of a storage command.
const maxKey = 250

// maxTokens mirrors memcached's MAX_TOKENS: its tokenizer stops after 23
// tokens and leaves the rest of the line in a terminal token.
const maxTokens = 24

// request is what the reader learns from a request line.
type request struct {
	cmd  *command
	kind kind
	data int64 // length of the data block that follows the line, without its CRLF; -1 for none
	// drain: memcached answers this request by dropping the answers of
	// earlier requests that it has not sent yet (a get with a key over 250
	// bytes: its conn_release_items culls the unsent responses), so it must
	// not be pipelined behind unanswered requests.
	drain bool
}

// command is the static description of a command name. Its Request is
// shared by every connection: behaviors and matchers only read it, so a
// known command costs no allocation per request.
type command struct {
	class class
	req   *chaos.Request
}

type class uint8

const (
	classOther class = iota
	classGet
	classStorage
	classCas
	classArith
	classTouch
	classDelete
	classFlushAll
	classOneArg // verbosity, cache_memlimit: one argument and an optional noreply
	classSlabs
	classLru
	classAnyNoreply // extstore, refresh_certs: memcached honours a final noreply
	classLruCrawler
	classWatch
	classQuit
	classMeta
)

var (
	commands     = map[string]*command{}
	emptyCommand = &command{req: &chaos.Request{}}
)

func init() {
	for name, c := range map[string]class{
		"get": classGet, "gets": classGet, "gat": classGet, "gats": classGet, "bget": classGet,
		"set": classStorage, "add": classStorage, "replace": classStorage, "append": classStorage, "prepend": classStorage,
		"cas":  classCas,
		"incr": classArith, "decr": classArith,
		"touch":     classTouch,
		"delete":    classDelete,
		"flush_all": classFlushAll,
		"verbosity": classOneArg, "cache_memlimit": classOneArg,
		"slabs":    classSlabs,
		"lru":      classLru,
		"extstore": classAnyNoreply, "refresh_certs": classAnyNoreply,
		"lru_crawler": classLruCrawler,
		"watch":       classWatch,
		"quit":        classQuit,
		"mg":          classMeta, "ms": classMeta, "md": classMeta, "ma": classMeta, "mn": classMeta, "me": classMeta,
		"stats": classOther, "version": classOther, "shutdown": classOther, "misbehave": classOther, "debugtime": classOther,
	} {
		commands[name] = &command{class: c, req: &chaos.Request{Command: name}}
	}
}

// maxUnknownName bounds the Command reported for a name memcached does not
// know, so that a garbage line does not become a huge label.
const maxUnknownName = 64

// lookup returns the command for a name; names memcached does not know get
// a fresh command reported as sent (it answers them with ERROR).
func lookup(name []byte) *command {
	if c, ok := commands[string(name)]; ok {
		return c
	}
	if len(name) > maxUnknownName {
		name = name[:maxUnknownName]
	}
	return &command{class: classOther, req: &chaos.Request{Command: string(name)}}
}

// tokenize splits a command line the way memcached's tokenize_command
// does: on single spaces only, at most maxTokens-1 tokens, the rest of the
// line left over (more is true then). ntokens counts memcached's way, with
// the terminal token, so that the checks below read like memcached's.
func tokenize(line []byte, toks *[maxTokens][]byte) (n int, more bool) {
	i := 0
	for i < len(line) {
		for i < len(line) && line[i] == ' ' {
			i++
		}
		if i == len(line) {
			break
		}
		if n == maxTokens-1 {
			return n, true
		}
		j := i
		for j < len(line) && line[j] != ' ' {
			j++
		}
		toks[n] = line[i:j]
		n++
		i = j
	}
	return n, false
}

// commandLine strips the line terminator ("\n", and a "\r" before it) and
// cuts the line at a NUL byte, where memcached's C strings end. (memcached
// keeps the "\r" of a line that is only "\r\n"; it answers ERROR either way.)
func commandLine(line []byte) []byte {
	if n := len(line); n > 0 && line[n-1] == '\n' {
		line = line[:n-1]
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
	}
	if i := bytes.IndexByte(line, 0); i >= 0 {
		line = line[:i]
	}
	return line
}

// parseRequest classifies one request line (with its terminator). It never
// fails: a line memcached cannot parse still gets exactly the answer the
// classification predicts (ERROR or CLIENT_ERROR), and a storage command
// that memcached rejects before reading its data block is classified
// without one, as memcached then reads the block as further commands.
func parseRequest(line []byte) request {
	var toks [maxTokens][]byte
	n, more := tokenize(commandLine(line), &toks)
	ntokens := n + 1 // memcached's count, terminal token included
	if n == 0 {
		return request{cmd: emptyCommand, data: -1}
	}
	c := lookup(toks[0])
	r := request{cmd: c, data: -1}
	if len(toks[0]) < 2 {
		return r
	}
	// noreply is memcached's set_noreply_maybe: the last token it saw.
	noreply := string(toks[n-1]) == "noreply"
	silent := func() kind {
		if noreply {
			return kindNone
		}
		return kindOne
	}
	switch c.class {
	case classGet:
		r.drain = hasLongKey(commandLine(line))
	case classStorage, classCas:
		want := 6
		if c.class == classCas {
			want = 7
		}
		if more || (ntokens != want && ntokens != want+1) {
			return r // ERROR, before noreply is looked at
		}
		r.kind = silent()
		if len(toks[1]) > maxKey || !strtoul32(toks[2]) || !strtol32ok(toks[3]) {
			return r
		}
		vlen, ok := strtol32(toks[4])
		if !ok {
			return r
		}
		if c.class == classCas && !strtoull(toks[5]) {
			return r
		}
		if vlen < 0 || vlen > math.MaxInt32-2 {
			return r
		}
		r.data = int64(vlen)
	case classArith, classTouch:
		if !more && (ntokens == 4 || ntokens == 5) {
			r.kind = silent()
		}
	case classDelete:
		// "delete <key> [0] [noreply]": memcached honours noreply from four tokens on.
		if !more && (ntokens == 4 || ntokens == 5) {
			r.kind = silent()
		}
	case classFlushAll:
		if !more && ntokens <= 4 {
			r.kind = silent()
		}
	case classOneArg:
		if !more && (ntokens == 3 || ntokens == 4) {
			r.kind = silent()
		}
	case classSlabs:
		if ntokens >= 4 && string(toks[1]) == "automove" {
			r.kind = silent()
		}
	case classLru:
		if ntokens >= 3 {
			r.kind = silent()
		}
	case classAnyNoreply:
		if ntokens >= 3 {
			r.kind = silent()
		}
	case classLruCrawler:
		if ntokens == 4 && (string(toks[1]) == "metadump" || string(toks[1]) == "mgdump") {
			r.kind = kindStream
		}
	case classWatch:
		r.kind = kindStream
	case classQuit:
		r.kind = kindQuit
	case classMeta:
		r = parseMeta(r, toks[:n], ntokens)
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
			continue
		}
		if n++; n > maxKey {
			return true
		}
	}
	return false
}

// parseMeta classifies mg, ms, md, ma, mn and me. A request is quiet when
// any flag token starts with q, which is all memcached looks at; calling
// one quiet that memcached rejects is harmless, because a quiet request may
// answer or not. ms reads a data block exactly when memcached would.
func parseMeta(r request, toks [][]byte, ntokens int) request {
	flags := 2
	switch toks[0][1] {
	case 'n':
		r.kind = kindNoop
		return r
	case 'e':
		return r
	case 'g', 'd', 'a':
	case 's':
		flags = 3
		if ntokens >= 4 && ntokens <= 20 && len(toks[1]) <= maxKey {
			if v, ok := strtol32(toks[2]); ok && v >= 0 && v <= math.MaxInt32-2 {
				r.data = int64(v)
			}
		}
	default:
		return r
	}
	for i := flags; i < len(toks); i++ {
		if toks[i][0] == 'q' {
			r.kind = kindQuiet
			break
		}
	}
	return r
}

// The number parsers below mirror memcached's safe_strtol, safe_strtoul and
// safe_strtoull (strtol family, C locale): optional leading white space and
// sign, decimal digits, then the end of the token or a white space byte.
// Their exact acceptance decides whether memcached reads a data block, so a
// difference here would split the stream in a different place than the
// server does.

func cSpace(b byte) bool { return b == ' ' || (b >= '\t' && b <= '\r') }

// cNumber scans a token like strtoull. ok is false when there is no digit
// or the digits are followed by something other than white space; overflow
// reports a value beyond 64 bits (ERANGE).
func cNumber(s []byte) (mag uint64, neg, overflow, ok bool) {
	i := 0
	for i < len(s) && cSpace(s[i]) {
		i++
	}
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	start := i
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		d := uint64(s[i] - '0')
		if mag > (math.MaxUint64-d)/10 {
			overflow = true
		}
		mag = mag*10 + d
		i++
	}
	if i == start {
		return 0, false, false, false
	}
	if i < len(s) && !cSpace(s[i]) {
		return 0, false, false, false
	}
	return mag, neg, overflow, true
}

// strtol32 is safe_strtol: strtol into a 64-bit long, then stored into an
// int32 without a range check (so "4294967301" reads as 5, as in memcached).
func strtol32(s []byte) (int32, bool) {
	mag, neg, overflow, ok := cNumber(s)
	if !ok || overflow {
		return 0, false
	}
	var v int64
	if neg {
		if mag > 1<<63 {
			return 0, false
		}
		v = int64(-mag)
	} else {
		if mag > math.MaxInt64 {
			return 0, false
		}
		v = int64(mag)
	}
	return int32(v), true
}

func strtol32ok(s []byte) bool { _, ok := strtol32(s); return ok }

// strtoull is safe_strtoull (and safe_strtoul on a 64-bit long): a negated
// value is accepted unless it reads as negative and the token has a '-'.
func strtoull(s []byte) bool {
	mag, neg, overflow, ok := cNumber(s)
	if !ok || overflow {
		return false
	}
	v := mag
	if neg {
		v = -mag
	}
	if int64(v) < 0 && bytes.IndexByte(s, '-') >= 0 {
		return false
	}
	return true
}

func strtoul32(s []byte) bool { return strtoull(s) }
