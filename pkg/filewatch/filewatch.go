// Package filewatch tells when a file may have changed, however it was
// changed: written in place, replaced by an editor's rename, repointed
// symlink, or swapped the way Kubernetes updates a mounted ConfigMap (the
// file is a symlink into "..data", itself a symlink that is renamed over to
// point at a new timestamped directory, so the file's own inode never
// changes and a watch on it would see nothing).
//
// It therefore watches directories, not the file: the one holding the path
// and the one holding the file the path resolves to. Events come in bursts
// (a swap is a create, a rename and a removal); they are debounced into one
// notice. A notice means "look again": the reader compares contents.
package filewatch

import (
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// DefaultDebounce is how long the directory must stay quiet after an event
// before the notice goes out.
const DefaultDebounce = 200 * time.Millisecond

// Watcher sends on C after the watched file may have changed.
type Watcher struct {
	// C receives one value per quiet burst of changes; a notice not yet
	// read absorbs later ones.
	C <-chan struct{}
	// Errors receives the watch's own failures; when the kernel's event
	// queue overflowed a notice follows, since a change may be lost.
	Errors <-chan error

	path     string
	debounce time.Duration
	fsw      *fsnotify.Watcher
	notify   chan struct{}
	errs     chan error
	done     chan struct{}
	wg       sync.WaitGroup
}

// New starts watching path. The directory holding it must exist.
func New(path string, debounce time.Duration) (*Watcher, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	w := &Watcher{
		path: abs, debounce: debounce, fsw: fsw,
		notify: make(chan struct{}, 1), errs: make(chan error, 1), done: make(chan struct{}),
	}
	w.C, w.Errors = w.notify, w.errs
	if err := fsw.Add(filepath.Dir(abs)); err != nil {
		fsw.Close()
		return nil, err
	}
	w.addTarget()
	w.wg.Add(1)
	go w.loop()
	return w, nil
}

// Close stops the watch; C is never sent to afterwards.
func (w *Watcher) Close() error {
	close(w.done)
	err := w.fsw.Close()
	w.wg.Wait()
	return err
}

// addTarget watches the directory of the file the path resolves to, when
// it is elsewhere: a write in place there changes the file too. It is
// called again after each change, since a swap moves the target.
func (w *Watcher) addTarget() {
	real, err := filepath.EvalSymlinks(w.path)
	if err != nil {
		return // gone for now; the path's directory is still watched
	}
	if dir := filepath.Dir(real); dir != filepath.Dir(w.path) {
		_ = w.fsw.Add(dir) // best effort: the path's directory still tells
	}
}

// relevant reports whether an event may change what the path reads: the
// path itself, the file it resolves to, or a Kubernetes "..name" entry.
func (w *Watcher) relevant(name string) bool {
	if name == w.path || strings.HasPrefix(filepath.Base(name), "..") {
		return true
	}
	real, err := filepath.EvalSymlinks(w.path)
	return err == nil && name == real
}

func (w *Watcher) loop() {
	defer w.wg.Done()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-w.done:
			return
		case ev, ok := <-w.fsw.Events:
			if !ok {
				return
			}
			if ev.Op == fsnotify.Chmod || !w.relevant(ev.Name) {
				continue
			}
			timer.Reset(w.debounce)
		case err, ok := <-w.fsw.Errors:
			if !ok {
				return
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				timer.Reset(w.debounce) // a change may be among the lost events
			}
			select {
			case w.errs <- err:
			default:
			}
		case <-timer.C:
			w.addTarget()
			select {
			case w.notify <- struct{}{}:
			default:
			}
		}
	}
}
