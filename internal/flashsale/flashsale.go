// Package flashsale is the flash sale tests run against a service: many
// callers released at once, each reserving one unit of one SKU.
package flashsale

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/stockd/stockd"
)

// Run releases callers goroutines at once on sku, each reserving 1 unit
// (ids c-0, c-1, …), and returns the ids granted and the number refused as
// insufficient stock; any other answer fails the test.
func Run(t testing.TB, svc stockd.Service, sku string, callers int) (granted []string, refused int) {
	t.Helper()
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			id := fmt.Sprintf("c-%d", i)
			_, _, err := svc.Reserve(context.Background(), stockd.Reserve{ID: id, Lines: []stockd.ReserveLine{{SKU: sku, Quantity: 1}}})
			mu.Lock()
			defer mu.Unlock()
			switch stockd.ErrorCode(err) {
			case "":
				granted = append(granted, id)
			case stockd.CodeInsufficientStock:
				refused++
			default:
				t.Errorf("reserve %s: %v", id, err)
			}
		}()
	}
	close(start)
	wg.Wait()
	return granted, refused
}
