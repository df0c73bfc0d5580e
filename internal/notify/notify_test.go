package notify

import (
	"sync"
	"testing"
)

func TestWaitIsClosedByTheNextNotifyOfItsPartitionOnly(t *testing.T) {
	h := New(2)
	w0, w1, any := h.Wait(0), h.Wait(1), h.WaitAny()
	h.Notify(0)
	select {
	case <-w0:
	default:
		t.Fatal("Wait(0) not closed by Notify(0)")
	}
	select {
	case <-any:
	default:
		t.Fatal("WaitAny not closed by Notify(0)")
	}
	select {
	case <-w1:
		t.Fatal("Wait(1) closed by Notify(0)")
	default:
	}
	if again := h.Wait(0); again == w0 {
		t.Fatal("Wait(0) after a Notify returned the closed channel")
	}
	h.Notify(1)
	<-w1
}

func TestNotifyWithoutWaitersKeepsTheChannel(t *testing.T) {
	h := New(1)
	h.Notify(0) // no one waits: nothing to close
	w := h.Wait(0)
	select {
	case <-w:
		t.Fatal("a Notify before Wait closed the waiter's channel")
	default:
	}
	h.Notify(0)
	<-w
}

func TestConcurrentNotifyAndWait(t *testing.T) {
	h := New(4)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for p := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
					h.Notify(p)
				}
			}
		}()
	}
	for range 1000 {
		<-h.WaitAny()
	}
	close(stop)
	wg.Wait()
}
