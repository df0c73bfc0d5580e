package sim

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// WriteText writes the summary for a human.
func (s *Summary) WriteText(w io.Writer) {
	var refused int64
	for _, n := range s.Refused {
		refused += n
	}
	fmt.Fprintf(w, "Simulated seed %d for %.1fs against %s (run %s, %d shop midnights).\n", s.Seed, s.Elapsed, s.Server, s.Run, s.Days)
	fmt.Fprintf(w, "Carts:     %d attempted (%.1f/s), %d granted, %d refused%s.\n", s.Attempts, s.AttemptsPerSec, s.Granted, refused, byCode(s.Refused))
	fmt.Fprintf(w, "Customers: %d paid, %d released, %d abandoned; too late to pay%s, to release%s.\n", s.Paid, s.Released, s.Abandoned, orNone(s.PayFailed), orNone(s.ReleaseFailed))
	fmt.Fprintf(w, "Supplier:  %s, %d rows booked, %d refused.\n", plural(s.Drops, "drop"), s.RowsBooked, s.RowsRefused)
	h := s.History
	fmt.Fprintf(w, "History:   %d carts held (%d of them given back as a later line was refused), %d committed, %d released,\n", h.CartsHeld, h.CartsCompensated, h.CartsCommitted, h.CartsReleased)
	fmt.Fprintf(w, "           %d holds expired, %d still held; %d lots expired (%d units).\n", h.HoldsExpired, h.CartsOpen, h.LotsExpired, h.Expired)
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "SKU\tON HAND\tRESERVED\tAVAILABLE\tRECEIVED\tCOMMITTED\tEXPIRED\tADJUSTED\tCONSERVED\t")
	for _, k := range s.SKUs {
		ok := "yes"
		if !k.Conserved {
			ok = "NO"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t\n", k.SKU, k.OnHand, k.Reserved, k.Available, k.Received, k.Committed, k.Expired, k.Adjusted+k.Transferred, ok)
	}
	tw.Flush()
	fmt.Fprintln(w)
	if s.Conserved {
		fmt.Fprintln(w, "Conserved: on_hand = received − committed − expired + adjusted for every SKU.")
	} else {
		fmt.Fprintln(w, "NOT CONSERVED: on_hand ≠ received − committed − expired + adjusted for the SKUs marked NO.")
	}
}

// orNone shows counts by code, or " none".
func orNone(m map[string]int64) string {
	if len(m) == 0 {
		return " none"
	}
	return byCode(m)
}

// plural writes n and noun, with an s unless n is 1.
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
