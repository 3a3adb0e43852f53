package mysql

import (
	"strings"
	"testing"
)

func TestErrPacket(t *testing.T) {
	got := errPacket(3, 1213, "40001", "Deadlock", true)
	want := "\x11\x00\x00\x03\xff\xbd\x04#40001Deadlock"
	if string(got) != want {
		t.Fatalf("ERR packet %q, want %q", got, want)
	}
	got = errPacket(0, 1040, "08004", "Too many connections", false)
	if want := "\x17\x00\x00\x00\xff\x10\x04Too many connections"; string(got) != want {
		t.Fatalf("handshake ERR packet %q, want %q", got, want)
	}
	huge := errPacket(1, 1, "HY000", strings.Repeat("x", maxChunk+5), true)
	if n, _ := header(huge); n != maxChunk-1 || len(huge) != headerLen+n {
		t.Fatalf("a huge message gives a payload of %d bytes in %d, want %d", n, len(huge)-headerLen, maxChunk-1)
	}
}

func TestFailure(t *testing.T) {
	f, err := newFailure("deadlock", "", "")
	if err != nil || f.code != 1213 || f.state != "40001" || !strings.HasPrefix(f.message, "Deadlock found") {
		t.Fatalf("deadlock preset: %+v, %v", f, err)
	}
	f, err = newFailure("lock_wait_timeout", "HY001", "custom")
	if err != nil || f.code != 1205 || f.state != "HY001" || f.message != "custom" || f.preset != "lock_wait_timeout" {
		t.Fatalf("options over a preset: %+v, %v", f, err)
	}
	f, err = newFailure("1290", "", "")
	if err != nil || f.state != "HY000" || !strings.Contains(f.message, "read-only") {
		t.Fatalf("a preset's number: %+v, %v", f, err)
	}
	f, err = newFailure("1105", "", "")
	if err != nil || f.code != 1105 || f.state != "HY000" {
		t.Fatalf("a number of no preset: %+v, %v", f, err)
	}
	for _, p := range presets {
		if _, err := newFailure(p.name, "", ""); err != nil {
			t.Errorf("preset %s: %v", p.name, err)
		}
	}
	for _, bad := range []string{"deadlok", "serialization", "40P01", "0", "65536", "-1", ""} {
		if _, err := newFailure(bad, "", ""); err == nil || !strings.Contains(err.Error(), "deadlock") {
			t.Errorf("error_code %q: %v, want an error listing the presets", bad, err)
		}
	}
	for _, bad := range []string{"4000", "400011", "4000a", "40 01"} {
		if _, err := newFailure("deadlock", bad, ""); err == nil || !strings.Contains(err.Error(), "sqlstate") {
			t.Errorf("sqlstate %q: %v, want an error naming the option", bad, err)
		}
	}
}
