// Package skipping is run by testenv's tests as a user runs a package: its
// tests need a server that is never installed.
package skipping

import (
	"os"
	"testing"

	"github.com/vaurien-go/vaurien/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.WithSkipSummary(m).Run()) }

func TestNeedsServer(t *testing.T) { testenv.LookPath(t, "vaurien-no-such-server") }

func TestNeedsServerToo(t *testing.T) { testenv.LookPath(t, "vaurien-no-such-server") }

func TestNeedsNothing(t *testing.T) {}
