package mysql

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// greetingPayload builds a Handshake v10 the way MySQL (mariadb false) or
// MariaDB (extended capabilities in the reserved bytes) sends it.
func greetingPayload(caps uint64, plugin string) []byte {
	b := []byte("\x0a8.0.36\x00\x01\x00\x00\x00abcdefgh\x00")
	b = binary.LittleEndian.AppendUint16(b, uint16(caps))
	b = append(b, 0x21, 0x02, 0x00)
	b = binary.LittleEndian.AppendUint16(b, uint16(caps>>16))
	b = append(b, 21, 0, 0, 0, 0, 0, 0)
	b = binary.LittleEndian.AppendUint32(b, uint32(caps>>32))
	b = append(b, "ijklmnopqrst\x00"...)
	return append(append(b, plugin...), 0)
}

func TestGreeting(t *testing.T) {
	caps := uint64(capLongPassword | capProtocol41 | capSSL | capSecureConnection | capPluginAuth | capDeprecateEOF)
	p := greetingPayload(caps, "caching_sha2_password")
	orig := append([]byte(nil), p...)
	g, err := parseGreeting(p)
	if err != nil {
		t.Fatal(err)
	}
	if g.caps != caps {
		t.Fatalf("capabilities %#x, want %#x", g.caps, caps)
	}
	g.clearSSL(p)
	g2, _ := parseGreeting(p)
	if g2.caps != caps&^capSSL {
		t.Fatalf("after clearSSL: capabilities %#x, want %#x", g2.caps, caps&^capSSL)
	}
	diff := 0
	for i := range p {
		if p[i] != orig[i] {
			diff++
		}
	}
	if diff != 1 || len(p) != len(orig) {
		t.Fatalf("clearSSL changed %d bytes (length %d to %d), want one bit of one byte", diff, len(orig), len(p))
	}

	// MariaDB: no CLIENT_MYSQL bit, extended capabilities in the reserved bytes.
	mcaps := uint64(capProtocol41|capSecureConnection|capPluginAuth) | mariadbCacheMetadata
	g, err = parseGreeting(greetingPayload(mcaps, "mysql_native_password"))
	if err != nil || g.caps != mcaps {
		t.Fatalf("MariaDB greeting: capabilities %#x (%v), want %#x", g.caps, err, mcaps)
	}

	for name, bad := range map[string][]byte{
		"empty": nil, "protocol 9": []byte("\x09x\x00"), "error": []byte("\xff\x10\x04Too many connections"),
		"no NUL": []byte("\x0a8.0"), "cut": greetingPayload(caps, "x")[:12],
	} {
		if _, err := parseGreeting(bad); err == nil {
			t.Errorf("%s greeting: no error", name)
		}
	}
}

func loginPayload(caps uint64, user, auth, db string) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(caps))
	b = append(b, 0, 0, 0, 1, 0x21)
	filler := make([]byte, 23)
	binary.LittleEndian.PutUint32(filler[19:], uint32(caps>>32))
	b = append(b, filler...)
	if len(b) != sslRequestLen {
		panic("login layout")
	}
	b = append(append(b, user...), 0)
	b = append(appendLenenc(b, uint64(len(auth))), auth...)
	if caps&capConnectWithDB != 0 {
		b = append(append(b, db...), 0)
	}
	return append(b, "mysql_native_password\x00"...)
}

func TestLogin(t *testing.T) {
	caps := uint64(capLongPassword | capProtocol41 | capSecureConnection | capPluginAuth | capPluginAuthLenenc | capConnectWithDB)
	l, err := parseLogin(loginPayload(caps, "app", "01234567890123456789", "shop"))
	if err != nil || l.user != "app" || l.db != "shop" || l.ssl || l.caps != caps {
		t.Fatalf("login %+v, %v", l, err)
	}
	ssl := loginPayload(caps|capSSL, "", "", "")[:sslRequestLen]
	if l, err := parseLogin(ssl); err != nil || !l.ssl {
		t.Fatalf("SSLRequest read as %+v, %v", l, err)
	}
	mcaps := uint64(capProtocol41|capSecureConnection|capPluginAuth|capPluginAuthLenenc) | mariadbCacheMetadata
	if l, err := parseLogin(loginPayload(mcaps, "u", "", "")); err != nil || l.caps != mcaps {
		t.Fatalf("MariaDB login capabilities %#x (%v), want %#x", l.caps, err, mcaps)
	}
	for name, bad := range map[string][]byte{
		"empty":         nil,
		"3.20 protocol": loginPayload(capLongPassword, "u", "", ""),
		"cut":           loginPayload(caps, "u", "", "")[:20],
		"no NUL":        loginPayload(caps, "u", "", "")[:sslRequestLen+1],
		"auth too long": append(loginPayload(caps, "u", "", "")[:sslRequestLen+2], 0x40, 'x'),
	} {
		if _, err := parseLogin(bad); err == nil {
			t.Errorf("%s login: no error", name)
		}
	}
}

func TestAgreed(t *testing.T) {
	ext := uint64(mariadbCacheMetadata)
	if got := agreed(capProtocol41|ext, capProtocol41|capSSL|ext); got != capProtocol41|ext {
		t.Errorf("MariaDB both: %#x", got)
	}
	if got := agreed(capLongPassword|capProtocol41|ext, capProtocol41|ext); got != capProtocol41 {
		t.Errorf("a MySQL server has no extended capabilities: %#x", got)
	}
}

func TestAuthNext(t *testing.T) {
	cases := []struct {
		name string
		p    []byte
		want authTurn
	}{
		{"ok", ok(0), authOK},
		{"error", errp(), authFailed},
		{"auth switch to ed25519", append([]byte("\xfeclient_ed25519\x00"), bytes.Repeat([]byte{7}, 32)...), authClient},
		{"caching_sha2 fast auth success", []byte{0x01, 0x03}, authServer},
		{"caching_sha2 full auth", []byte{0x01, 0x04}, authClient},
		{"public key", []byte("\x01-----BEGIN PUBLIC KEY-----"), authClient},
	}
	for _, c := range cases {
		if got := authNext(c.p); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
}
