// Package mysql owns vaurien's mysql protocol: the framing of the MySQL
// and MariaDB client/server protocol on the protocol kit, and how its
// faults look on the wire (ERR packets with the server's own error codes
// and SQLSTATEs).
//
// # Handshake and authentication
//
// They pass through untouched, packet by packet, before anything is drawn:
// the server's greeting, the client's login, then every packet of the
// authentication exchange up to the server's OK, whoever speaks
// (mysql_native_password, caching_sha2_password's fast and full
// authentication with its public key request, auth switches such as
// MariaDB's ed25519). By default (tls = "disable") CLIENT_SSL is cleared
// from the greeting's capabilities, so a client that prefers TLS goes on
// in plain text; with tls = "passthrough" the greeting is relayed as is,
// and a client's SSLRequest switches the connection to a raw relay. A
// route with tls and backend_tls blocks keeps CLIENT_SSL, relays the
// SSLRequest and makes each side's TLS handshake itself: the session is
// framed inside TLS. A
// session that agrees on compression (CLIENT_COMPRESS, zstd) is relayed
// raw after the login, and so are clients of the pre-4.1 protocol.
//
// # Framing
//
// Packets are a 3-byte length and a sequence id; a payload of 2^24-1
// bytes or more comes in chunks, each framed on its own and streamed.
// One command packet is one unit of draw. Its reply is followed chunk by
// chunk to its end: OK or ERR; a resultset (column count, definitions,
// EOF unless CLIENT_DEPRECATE_EOF, rows up to EOF or the OK that replaces
// it, or ERR), text or binary; further results while the status says
// SERVER_MORE_RESULTS_EXISTS (multi-statements, CALL); a COM_STMT_PREPARE
// answer with its parameter and column definitions; COM_STMT_FETCH rows;
// MariaDB's progress reports and optional metadata. COM_STMT_CLOSE,
// COM_STMT_SEND_LONG_DATA and COM_QUIT get no reply, and are neither drawn
// nor counted. LOAD DATA LOCAL: the server's request for the file (0xfb)
// ends the statement's unit; the client's file packets, up to the empty
// one, go through undrawn, and the server's answer to them follows.
// COM_CHANGE_USER and the binlog dump commands switch the connection to a
// raw relay.
//
// chaos.Request.Command is the statement's first keyword in upper case
// (SELECT, UPDATE, START, COMMIT...; comments and MySQL's executable
// comments read as the server reads them; OTHER for anything else, so
// that metrics labels stay a fixed set), for COM_QUERY and for
// COM_STMT_EXECUTE, which is drawn as the statement it runs. Other
// commands are named without their COM_ prefix: PING, INIT_DB,
// STMT_PREPARE, STMT_RESET... SQL is the statement's text, its first 4 KiB;
// Database and User are those of the login.
//
// # Faults
//
//   - error answers an ERR packet with the sequence id that follows the
//     command's, and the statement is not run. The error is the behavior's
//     code, else the route's error_code: a preset or a MySQL error number.
//     deadlock (1213, 40001, the default): the server rolls back a
//     transaction that a real deadlock breaks, so inside a transaction the
//     proxy sends ROLLBACK in the statement's place and drops its answer:
//     client and server agree that the transaction is gone, and a retry
//     starts afresh. lock_wait_timeout
//     (1205) and read_only (1290): the statement is not run and the
//     transaction stays open, as on the server. too_many_connections
//     (1040): each connection is drawn once at the handshake (Command
//     CONNECT) and an error there answers the ERR packet in place of the
//     greeting, then closes; only error acts there. gone_away: the
//     statement is not run and the connection closes without an answer
//     (the backend's with a reset, so the server rolls back an open
//     transaction); drivers report a lost connection.
//   - error with inject: the statement runs, and its reply is replaced by
//     the ERR packet: the client is told it failed when it did not (with
//     deadlock inside a transaction, a ROLLBACK goes ahead of the client's
//     next command, unless that is a ROLLBACK).
//   - delay: the statement runs, later (or its reply comes later).
//   - hang and timeout: the statement is not forwarded, so it does not run;
//     the server's session (and an open transaction) stays until the
//     client leaves, or timeout closes the connection.
//   - blackout and down: the client's connection closes; the statement
//     does not run, and the server rolls back an open transaction when its
//     connection ends.
//   - reset_peer: at once, as blackout with an RST; after a delay, the
//     statement was forwarded and may have run.
//   - abort: the statement is forwarded and runs; both connections drop
//     before its reply, so the client cannot know it ran.
//   - filters (bandwidth, slicer, corrupt, limit_data) act on that
//     command's bytes and its reply's; slow_close holds the close.
package mysql
