package stockd

import (
	"testing"
)

// BenchmarkValidate measures the cost of validating commands, most of which
// is checking their names: the ASCII names nearly every request carries, and
// names outside ASCII, which take the slower path.
func BenchmarkValidate(b *testing.B) {
	lines := make([]ReserveLine, 10)
	for i := range lines {
		lines[i] = ReserveLine{SKU: "SKU-" + string(rune('A'+i)) + "-000123", Quantity: 1, Location: "warehouse-1"}
	}
	cases := []struct {
		name string
		cmd  Command
	}{
		{"receive/ascii", ReceiveStock{ID: "rcpt-2027-03-10-0001", SKU: "SKU-ABC-000123", Location: "warehouse-1", Quantity: 10, Lot: "L-2027-11", BestBefore: "2027-03-15"}},
		{"receive/unicode", ReceiveStock{ID: "réception-0001", SKU: "Käse-Gouda-500g", Location: "東京-倉庫", Quantity: 10, Lot: "Charge-Ä1", BestBefore: "2027-03-15"}},
		{"reserve/10lines", Reserve{ID: "cart-42-0001", Customer: "customer-9", Lines: lines}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := c.cmd.Validate(DefaultLimits); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
