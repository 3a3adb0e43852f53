package app

import (
	"bytes"
	"crypto/sha256"
	"os"

	"github.com/vaurien-go/vaurien/pkg/filewatch"
	"github.com/vaurien-go/vaurien/pkg/logging"
)

// fileWatch follows the configuration file for Run. Its zero value (no
// file, or watch = false) never reports, so Run's select needs no special
// case.
type fileWatch struct{ w *filewatch.Watcher }

// watch starts following the file when the configuration asks for it. A
// watch that cannot start is logged and left off: SIGHUP and POST /reload
// still work.
func (a *App) watch() fileWatch {
	f := a.File()
	if !f.Watch || f.Path == "" {
		return fileWatch{}
	}
	w, err := filewatch.New(f.Path, filewatch.DefaultDebounce)
	if err != nil {
		a.log.Error().Err(err).Str("file", f.Path).Msg("cannot watch the config file: reload with SIGHUP or POST /reload")
		return fileWatch{}
	}
	a.log.Info().Str("file", f.Path).Msg("watching the config file")
	return fileWatch{w}
}

func (fw fileWatch) changed() <-chan struct{} {
	if fw.w == nil {
		return nil
	}
	return fw.w.C
}

func (fw fileWatch) errors() <-chan error {
	if fw.w == nil {
		return nil
	}
	return fw.w.Errors
}

func (fw fileWatch) close() {
	if fw.w != nil {
		fw.w.Close()
	}
}

// reloadIfChanged reloads when the file's bytes differ from those in
// force: a watch reports touches, rewrites of the same bytes and the
// kubelet's periodic resyncs too, which must not count as reloads. A file
// that cannot be read now (mid-swap) is left for the next notice.
func (a *App) reloadIfChanged() {
	f := a.File()
	src, err := os.ReadFile(f.Path)
	if err != nil {
		a.log.Warn().Err(err).Str("file", f.Path).Msg("config file changed but cannot be read: the running configuration stays")
		return
	}
	if sum := sha256.Sum256(src); bytes.Equal(sum[:], f.SHA256[:]) {
		return
	}
	a.log.Info().Str("file", f.Path).Str(logging.FieldReason, "file changed").Msg("reloading")
	_ = a.Reload() // logged; the running configuration stays
}
