// Package workers runs independent pieces of work a few at a time.
package workers

import (
	"runtime"
	"sync"
)

// Each calls fn(i) for every i in [0, n) and returns when all calls have.
// It runs twice as many calls at once as there are processors, so that one
// waiting for a read does not leave a processor idle.
func Each(n int, fn func(i int)) {
	sem := make(chan struct{}, 2*runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			fn(i)
		}()
	}
	wg.Wait()
}
