//go:build unix

package dockertest

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// lockTag serialises the builds of one tag across test processes (go test
// runs packages in parallel): a second build of the same inputs then hits
// the build cache and yields the same image, instead of a twin that
// leaves the first one untagged. It returns the unlock.
func lockTag(t testing.TB, tag string) func() {
	t.Helper()
	sum := sha256.Sum256([]byte(tag))
	path := filepath.Join(os.TempDir(), "vaurien-dockertest-"+hex.EncodeToString(sum[:8])+".lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		t.Fatalf("lock the build of %s: %v", tag, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		t.Fatalf("lock the build of %s: %v", tag, err)
	}
	return func() { f.Close() } // closing releases the lock
}
