package mysql

import (
	"encoding/binary"
	"fmt"
)

// Commands (the first byte of a command packet) whose replies differ.
const (
	comQuit             = 0x01
	comInitDB           = 0x02
	comQuery            = 0x03
	comFieldList        = 0x04
	comStatistics       = 0x09
	comProcessInfo      = 0x0a
	comPing             = 0x0e
	comChangeUser       = 0x11
	comBinlogDump       = 0x12
	comRegisterSlave    = 0x15
	comStmtPrepare      = 0x16
	comStmtExecute      = 0x17
	comStmtSendLongData = 0x18
	comStmtClose        = 0x19
	comStmtReset        = 0x1a
	comStmtFetch        = 0x1c
	comBinlogDumpGTID   = 0x1e
	comResetConnection  = 0x1f
	comStmtBulkExecute  = 0xfa // MariaDB
)

// step says what comes after a packet of a reply.
type step uint8

const (
	stepMore   step = iota // another packet of the reply follows from the server
	stepDone               // the reply is complete
	stepInfile             // the client now sends a file (LOAD DATA LOCAL), then the server goes on
)

// phase is where a reply is in its grammar.
type phase uint8

const (
	phaseFirst       phase = iota // the first packet: OK, ERR, a column count, or what the command answers
	phaseColumns                  // column definitions (cols left), then an EOF unless CLIENT_DEPRECATE_EOF
	phaseColsEOF                  // the EOF after the column definitions
	phaseRows                     // rows until EOF, or OK with 0xfe under CLIENT_DEPRECATE_EOF, or ERR
	phaseParams                   // prepare: parameter definitions (params left), then an EOF
	phaseParamsEOF                // the EOF after them
	phasePrepCols                 // prepare: column definitions (cols left), then an EOF
	phasePrepColsEOF              // the EOF after them
	phaseFieldList                // COM_FIELD_LIST: column definitions until EOF or ERR
)

// reply follows the server's answer to one command, chunk by chunk, and
// says where it ends. It reads only the first peekLen bytes of each
// chunk. Its zero value is not ready: start it with begin.
type reply struct {
	cmd    byte
	caps   uint64 // the capabilities both sides agreed on
	phase  phase
	cols   uint64
	params uint64
	binary bool   // binary resultset rows (COM_STMT_EXECUTE, COM_STMT_FETCH)
	cont   bool   // the previous chunk was maxChunk long: this one goes on with its payload
	after  step   // what follows a long payload once its last chunk has come
	status uint16 // the status flags of the reply's last OK or EOF
	// statusSeen: status was read (an ERR, a prepare answer, a string
	// carry none).
	statusSeen bool
	// stmt is the statement id a COM_STMT_PREPARE's answer gave, 0 when
	// it failed.
	stmt uint32
}

// begin readies r for the reply to command cmd.
func (r *reply) begin(cmd byte, caps uint64) {
	*r = reply{cmd: cmd, caps: caps, binary: cmd == comStmtExecute || cmd == comStmtFetch || cmd == comStmtBulkExecute}
	if cmd == comStmtFetch {
		r.phase = phaseRows
	}
	if cmd == comFieldList {
		r.phase = phaseFieldList
	}
}

// next takes one chunk of the reply: its payload length n and the first
// min(n, peekLen) bytes of its payload. It returns what comes after it.
// An error means the bytes are not a reply to the command: the connection
// cannot be framed any more.
func (r *reply) next(n int, head []byte) (step, error) {
	if len(head) < min(n, peekLen) {
		return 0, fmt.Errorf("reply chunk of %d bytes given %d bytes of its head, want %d", n, len(head), min(n, peekLen))
	}
	if r.cont {
		// The rest of a long payload: what it is was decided by its first
		// chunk.
		r.cont = n == maxChunk
		if r.cont {
			return stepMore, nil
		}
		return r.after, nil
	}
	r.cont = n == maxChunk
	s, err := r.packet(n, head)
	if err != nil || !r.cont {
		return s, err
	}
	// What the packet ends (a string answer, an OK with a long text)
	// ends with its last chunk.
	r.after = s
	return stepMore, nil
}

// packet classifies the first chunk of a payload.
func (r *reply) packet(n int, p []byte) (step, error) {
	if n == 0 {
		if r.phase == phaseFirst {
			return 0, fmt.Errorf("empty packet where a reply to command %#x starts", r.cmd)
		}
		// An empty row of a resultset cannot be (a text row has one
		// length per column); an empty column definition neither.
		return 0, fmt.Errorf("empty packet inside the reply to command %#x", r.cmd)
	}
	if p[0] == pktErr && r.caps&(mariadbProgress|capProgressObsolete) != 0 && n >= 3 && p[1] == 0xff && p[2] == 0xff {
		return stepMore, nil // a progress report, not the reply
	}
	switch r.phase {
	case phaseFirst:
		return r.first(n, p)
	case phaseColumns, phasePrepCols, phaseParams:
		left := &r.cols
		if r.phase == phaseParams {
			left = &r.params
		}
		*left--
		if *left > 0 {
			return stepMore, nil
		}
		return r.endOfDefinitions(), nil
	case phaseColsEOF, phaseParamsEOF, phasePrepColsEOF:
		if !r.isEOF(n, p) {
			return 0, fmt.Errorf("packet %#x where an EOF packet ends the definitions", p[0])
		}
		st, _ := eofStatus(p)
		r.status, r.statusSeen = st, true
		switch r.phase {
		case phaseParamsEOF:
			return r.prepColumns(), nil
		case phasePrepColsEOF:
			return stepDone, nil
		}
		if st&statusCursorExists != 0 {
			// A cursor was opened: the rows come with COM_STMT_FETCH.
			return stepDone, nil
		}
		r.phase = phaseRows
		return stepMore, nil
	case phaseRows:
		switch {
		case p[0] == pktErr:
			return stepDone, nil
		case p[0] == pktEOF && n < maxChunk && (n < 9 || r.caps&capDeprecateEOF != 0):
			var st uint16
			if r.caps&capDeprecateEOF != 0 && n >= 7 {
				st, _ = okStatus(p)
			} else {
				st, _ = eofStatus(p)
			}
			return r.endOfResult(st), nil
		}
		return stepMore, nil
	case phaseFieldList:
		switch {
		case p[0] == pktErr:
			return stepDone, nil
		case r.isEOF(n, p) || (p[0] == pktEOF && n < maxChunk && r.caps&capDeprecateEOF != 0):
			return stepDone, nil
		}
		return stepMore, nil
	}
	return 0, fmt.Errorf("reply in an unknown phase %d", r.phase)
}

// isEOF reports whether a packet is a classic EOF packet.
func (r *reply) isEOF(n int, p []byte) bool { return p[0] == pktEOF && n < 9 }

// first classifies the first packet of a reply (or of a further resultset).
func (r *reply) first(n int, p []byte) (step, error) {
	switch r.cmd {
	case comStatistics:
		return stepDone, nil // a string, whatever its first byte
	case comStmtPrepare:
		switch p[0] {
		case pktErr:
			return stepDone, nil
		case pktOK:
			if n < 12 {
				return 0, fmt.Errorf("prepare answer of %d bytes, want at least 12", n)
			}
			r.stmt = binary.LittleEndian.Uint32(p[1:])
			r.cols = uint64(binary.LittleEndian.Uint16(p[5:]))
			r.params = uint64(binary.LittleEndian.Uint16(p[7:]))
			if r.params > 0 {
				r.phase = phaseParams
				return stepMore, nil
			}
			return r.prepColumns(), nil
		}
		return 0, fmt.Errorf("packet %#x where a prepare answer starts", p[0])
	}
	switch {
	case p[0] == pktErr:
		return stepDone, nil
	case p[0] == pktOK, p[0] == pktEOF && n < 9:
		// OK, or an EOF for the few commands answered by one (COM_DEBUG,
		// COM_SET_OPTION): both may say more results follow.
		var st uint16
		if p[0] == pktOK {
			st, _ = okStatus(p)
		} else {
			st, _ = eofStatus(p)
		}
		return r.endOfResult(st), nil
	case p[0] == pktLocalInfile && r.cmd == comQuery:
		return stepInfile, nil
	}
	if !r.resultset() {
		// Other commands answer one packet.
		return stepDone, nil
	}
	cols, size, ok := lenenc(p)
	if !ok || cols == 0 || size > n {
		return 0, fmt.Errorf("packet %#x where a column count, OK or ERR starts a reply", p[0])
	}
	r.cols = cols
	if r.caps&(capOptionalMetadata|mariadbCacheMetadata) != 0 {
		// A byte after the count says whether the definitions follow.
		if size >= n || size >= len(p) {
			return 0, fmt.Errorf("column count without its metadata flag")
		}
		if p[size] == 0 {
			return r.endOfDefinitions(), nil
		}
	}
	r.phase = phaseColumns
	return stepMore, nil
}

// resultset reports whether the command may answer with a resultset.
func (r *reply) resultset() bool {
	switch r.cmd {
	case comQuery, comStmtExecute, comProcessInfo, comStmtBulkExecute:
		return true
	}
	return false
}

// endOfDefinitions moves past the last column or parameter definition.
func (r *reply) endOfDefinitions() step {
	eof := r.caps&capDeprecateEOF == 0
	switch r.phase {
	case phaseParams:
		if eof {
			r.phase = phaseParamsEOF
			return stepMore
		}
		return r.prepColumns()
	case phasePrepCols:
		if eof {
			r.phase = phasePrepColsEOF
			return stepMore
		}
		return stepDone
	}
	if eof {
		r.phase = phaseColsEOF
	} else {
		r.phase = phaseRows
	}
	return stepMore
}

// prepColumns moves a prepare answer to its column definitions, if any.
func (r *reply) prepColumns() step {
	if r.cols == 0 {
		return stepDone
	}
	r.phase = phasePrepCols
	return stepMore
}

// endOfResult ends one result: the reply ends unless the server says more
// results follow (multi-statements, CALL).
func (r *reply) endOfResult(status uint16) step {
	r.status, r.statusSeen = status, true
	if status&statusMoreResults != 0 {
		r.phase = phaseFirst
		return stepMore
	}
	return stepDone
}

// infileDone is called after the client's file has been sent: the server
// answers it as it answers a statement, OK or ERR, and more results may
// follow.
func (r *reply) infileDone() {
	r.phase = phaseFirst
	r.cont = false
}
