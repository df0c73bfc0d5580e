package stockd

import (
	"maps"
	"slices"
)

// sameLimit compares two SKUs' per-customer limits and what each customer
// has of them: live, rebuilt from the log and decoded from a snapshot, they
// must agree.
func sameLimit(a, b *skuLimit) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.CustomerLimit == b.CustomerLimit && maps.EqualFunc(a.customers, b.customers, func(x, y *customerUse) bool {
		return x.held == y.held && slices.Equal(x.commits, y.commits)
	})
}
