package stockd

// The binary encodings of bundles, shared by events (format 6), snapshots
// (format 7) and retired records (format 6).

func (w *writer) components(cs []BundleComponent) {
	w.uvarint(uint64(len(cs)))
	for _, c := range cs {
		w.string(c.SKU)
		w.varint(c.Quantity)
	}
}

func (r *reader) components() []BundleComponent {
	n := r.count()
	if n == 0 {
		return nil
	}
	out := make([]BundleComponent, 0, n)
	for i := 0; i < n && r.err == nil; i++ {
		out = append(out, BundleComponent{SKU: r.string(), Quantity: r.varint()})
	}
	return out
}

func (w *writer) bundle(b Bundle) {
	w.string(b.SKU)
	w.components(b.Components)
}

func (r *reader) bundle() Bundle { return Bundle{SKU: r.string(), Components: r.components()} }

func (w *writer) bundleLines(ls []BundleLine) {
	w.uvarint(uint64(len(ls)))
	for _, l := range ls {
		w.string(l.SKU)
		w.varint(l.Quantity)
		w.components(l.Components)
	}
}

func (r *reader) bundleLines() []BundleLine {
	n := r.count()
	if n == 0 {
		return nil
	}
	out := make([]BundleLine, 0, n)
	for i := 0; i < n && r.err == nil; i++ {
		out = append(out, BundleLine{SKU: r.string(), Quantity: r.varint(), Components: r.components()})
	}
	return out
}

func (w *writer) commitLines(ls []CommitLine) {
	w.uvarint(uint64(len(ls)))
	for _, l := range ls {
		w.string(l.SKU)
		w.varint(l.Quantity)
	}
}

func (r *reader) commitLines() []CommitLine {
	n := r.count()
	if n == 0 {
		return nil
	}
	out := make([]CommitLine, 0, n)
	for i := 0; i < n && r.err == nil; i++ {
		out = append(out, CommitLine{SKU: r.string(), Quantity: r.varint()})
	}
	return out
}

// resBundles encodes a reservation's bundle lines with what each committed.
func (w *writer) resBundles(bs []resBundle) {
	w.uvarint(uint64(len(bs)))
	for _, b := range bs {
		w.bundleLines([]BundleLine{b.line})
		w.varint(b.committed)
	}
}

func (r *reader) resBundles() []resBundle {
	n := r.count()
	if n == 0 {
		return nil
	}
	out := make([]resBundle, 0, n)
	for i := 0; i < n && r.err == nil; i++ {
		ls := r.bundleLines()
		c := r.varint()
		if len(ls) != 1 {
			r.fail("a reservation's bundle line encodes %d lines", len(ls))
			return nil
		}
		out = append(out, resBundle{line: ls[0], committed: c})
	}
	return out
}

// encodeBundles writes the part of a snapshot (format 7) that bundles add
// after everything older formats have: the catalog's bundles, which only
// LocationPartition's snapshot keeps (the others receive them by
// SetCatalog), then the bundle lines of the reservations that have any, by
// reservation id.
func (w *writer) encodeBundles(s *State) {
	if s.partition == LocationPartition {
		w.uvarint(uint64(len(s.bundles)))
		for _, b := range s.bundles {
			w.bundle(b)
		}
	} else {
		w.uvarint(0)
	}
	n := 0
	for _, r := range s.reservations {
		if len(r.bundles) > 0 {
			n++
		}
	}
	w.uvarint(uint64(n))
	for id, r := range s.reservations {
		if len(r.bundles) > 0 {
			w.string(id)
			w.resBundles(r.bundles)
		}
	}
}

// decodeBundles reads what encodeBundles wrote into s, whose reservations
// are decoded already.
func (r *reader) decodeBundles(s *State) {
	n := r.count()
	if n > 0 && s.partition != LocationPartition {
		r.fail("bundles in a snapshot of partition %d", s.partition)
		return
	}
	if n > 0 {
		s.bundles = make(Bundles, n)
	}
	for ; n > 0 && r.err == nil; n-- {
		b := r.bundle()
		s.bundles[b.SKU] = b
	}
	for n := r.count(); n > 0 && r.err == nil; n-- {
		id := r.string()
		bs := r.resBundles()
		res := s.reservations[id]
		if res == nil {
			if r.err == nil {
				r.fail("bundle lines of reservation %q, which the snapshot does not hold", id)
			}
			return
		}
		res.bundles = bs
	}
}
