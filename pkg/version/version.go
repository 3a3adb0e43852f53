// Package version holds the build's version, stamped at link time with
// -ldflags "-X github.com/vaurien-go/vaurien/pkg/version.Version=v1.2.3",
// and falls back to the module version Go recorded in the binary.
package version

import (
	"runtime"
	"runtime/debug"
)

// Version is the release, "dev" in an unstamped build.
var Version = "dev"

// Commit is the source revision, when known.
var Commit = ""

func init() {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return
	}
	if Version == "dev" && info.Main.Version != "" && info.Main.Version != "(devel)" {
		Version = info.Main.Version
	}
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" && Commit == "" {
			Commit = s.Value
		}
	}
}

// GoVersion is the Go release the binary was built with.
func GoVersion() string { return runtime.Version() }

// String is the one-line version text.
func String() string {
	s := "vaurien " + Version
	if Commit != "" {
		s += " (" + Commit[:min(12, len(Commit))] + ")"
	}
	return s + " " + GoVersion()
}
