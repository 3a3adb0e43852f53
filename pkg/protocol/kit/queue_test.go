package kit

import (
	"sync/atomic"
	"testing"
)

// The queue holds no room for Exchanges while it is empty, keeps their
// order up to its bound, and says when it is closed once drained.
func TestQueueHoldsNothingEmpty(t *testing.T) {
	var q queue[int]
	var idle atomic.Bool
	idle.Store(true) // the test takes only while it puts nothing
	q.init(&idle)
	var x Exchange[int]
	if ok, closed := q.take(&x, false); ok || closed {
		t.Fatalf("take from an empty queue: ok %v, closed %v", ok, closed)
	}
	for round := range 3 {
		for i := range queueLen {
			if !q.put(&Exchange[int]{R: i}, false) {
				t.Fatalf("round %d: put %d refused below the bound", round, i)
			}
		}
		if q.put(&Exchange[int]{R: queueLen}, false) {
			t.Fatalf("round %d: put past the bound of %d", round, queueLen)
		}
		for i := range queueLen {
			if ok, _ := q.take(&x, false); !ok || x.R != i {
				t.Fatalf("round %d: take %d: ok %v, got %d", round, i, ok, x.R)
			}
			if i == 0 && !q.put(&Exchange[int]{R: queueLen}, false) {
				t.Fatalf("round %d: no room after a take", round)
			}
		}
		if ok, _ := q.take(&x, false); !ok || x.R != queueLen {
			t.Fatalf("round %d: the last put: ok %v, got %d", round, ok, x.R)
		}
		if q.ring.Load() != nil {
			t.Fatalf("round %d: a drained queue still holds its ring", round)
		}
	}
	q.put(&Exchange[int]{R: 1}, false)
	q.close()
	if ok, closed := q.take(&x, true); !ok || closed || x.R != 1 {
		t.Fatalf("a closed queue's last Exchange: ok %v, closed %v, got %d", ok, closed, x.R)
	}
	if ok, closed := q.take(&x, true); ok || !closed {
		t.Fatalf("a closed, drained queue: ok %v, closed %v", ok, closed)
	}
}

// A loop that waits is signalled: the reply loop by a put or the close, the
// request loop by the take that makes room, each on its own channel, so that
// a signal for one never wakes the other in its place.
func TestQueueSignalsItsWaiter(t *testing.T) {
	var q queue[int]
	var idle atomic.Bool
	idle.Store(true) // the test takes only while it puts nothing
	q.init(&idle)
	var x Exchange[int]
	q.take(&x, true)
	q.put(&Exchange[int]{}, false)
	// The request loop fills the queue before the reply loop takes the
	// signal meant for it.
	for q.put(&Exchange[int]{}, true) {
	}
	select {
	case <-q.room:
		t.Fatal("the request loop was signalled room in a full queue")
	default:
	}
	select {
	case <-q.ready:
	default:
		t.Fatal("a put did not signal the waiting reply loop")
	}
	q.take(&x, false)
	select {
	case <-q.room:
	default:
		t.Fatal("a take did not signal the request loop waiting for room")
	}
	for {
		if ok, _ := q.take(&x, true); !ok {
			break
		}
	}
	q.close()
	select {
	case <-q.ready:
	default:
		t.Fatal("the close did not signal the waiting reply loop")
	}
}
