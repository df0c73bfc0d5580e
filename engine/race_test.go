package engine_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/stockd/stockd"
)

// raceCarts releases n goroutines at once, each calling try with its own
// cart id ("cart-0", …), and returns the ids try accepted. Any error other
// than one coded refusal fails the test: a race proves nothing if carts fail
// for another reason.
func raceCarts(t *testing.T, n int, refusal stockd.Code, try func(id string) error) []string {
	t.Helper()
	var (
		start   = make(chan struct{})
		wg      sync.WaitGroup
		mu      sync.Mutex
		granted []string
		errs    []error
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("cart-%d", i)
			<-start
			err := try(id)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				granted = append(granted, id)
			case !stockd.IsCode(err, refusal):
				errs = append(errs, err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("refusals other than %s: %v", refusal, errs)
	}
	return granted
}
