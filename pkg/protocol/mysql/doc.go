// Package mysql owns vaurien's mysql protocol: the framing of the MySQL
// and MariaDB client/server protocol on both sides of a connection, and
// how its faults look on the wire (ERR packets with the server's own
// error codes and SQLSTATEs).
package mysql
