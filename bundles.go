package stockd

import (
	"context"
	"maps"
	"slices"
)

// Bundles (kits): a SKU sold as components × quantities.
//
// A bundle's definition is catalog-wide, like a location: it is recorded in
// LocationPartition's log (BundleDefined) and every other partition, on every
// node, learns it the way it learns locations (Catalog, SetCatalog). A cart
// may live in any partition and its lines may be held in any other, so the
// definition must be known wherever a reservation's lines are decided.
//
// A bundle holds no stock of its own. A reservation line of a bundle × n is
// expanded, where the reservation's lines are decided (expandLines, at the
// cart's home), into its components × (quantity·n), merged with the cart's
// other lines of the same SKUs: every SKU is held once per cart, and the
// whole cart is held or refused together, across partitions as any other.
// The expansion is recorded (BundlesReserved), so a definition changed later
// never changes what a hold holds, nor what its commit consumes.

// BundleComponent is one component of a bundle: Quantity units of SKU go
// into one unit of the bundle.
type BundleComponent struct {
	SKU      string `json:"sku"`
	Quantity int64  `json:"quantity"`
}

// Bundle is the definition of a bundle SKU.
type Bundle struct {
	SKU        string            `json:"sku"`
	Components []BundleComponent `json:"components"`
}

// Bundles maps bundle SKUs to their definitions. A Bundles value is never
// modified once published; changes make a new map.
type Bundles map[string]Bundle

// Catalog is the configuration every partition decides with alike, kept in
// LocationPartition's log and published to the others: the locations and
// the bundles. Its maps are never modified once published.
type Catalog struct {
	Locations Locations
	Bundles   Bundles
}

// Learn returns the catalog with the catalog-wide configuration event d
// applied, and false (with c unchanged) if d is not one. It makes new maps
// for what changes, leaving c's as they were: readers of c are not
// disturbed. A node that follows LocationPartition's log from elsewhere
// learns the catalog with it, exactly as the partition's own State does.
func (c Catalog) Learn(d EventData) (Catalog, bool) {
	switch d := d.(type) {
	case LocationConfigured:
		next := maps.Clone(c.Locations)
		if next == nil {
			next = Locations{}
		}
		next[d.Location.ID] = d.Location
		c.Locations = next
	case BundleDefined:
		next := maps.Clone(c.Bundles)
		if next == nil {
			next = Bundles{}
		}
		next[d.Bundle.SKU] = d.Bundle
		c.Bundles = next
	default:
		return c, false
	}
	return c, true
}

// Catalog returns the catalog this state decides with. Its maps must not be
// modified.
func (s *State) Catalog() Catalog { return Catalog{Locations: s.locations, Bundles: s.bundles} }

// SetCatalog replaces the catalog used for decisions. The engine calls it on
// every partition but LocationPartition, with the catalog that partition
// published; its maps must not be modified afterwards.
func (s *State) SetCatalog(c Catalog) {
	s.SetLocations(c.Locations)
	if c.Bundles == nil {
		c.Bundles = Bundles{}
	}
	s.bundles = c.Bundles
}

// Bundle returns the definition of a bundle SKU, and false if sku is not a
// bundle as this partition knows the catalog.
func (s *State) Bundle(sku string) (Bundle, bool) {
	b, ok := s.bundles[sku]
	return b, ok
}

// DefineBundle makes SKU a bundle of Components, or changes its definition.
// A bundle holds no stock; its components must not be bundles themselves.
type DefineBundle struct {
	SKU        string
	Components []BundleComponent
}

func (c DefineBundle) route() route { return route{location: true} }

// Validate implements Command.
func (c DefineBundle) Validate(lim Limits) error {
	if err := checkName("sku", c.SKU); err != nil {
		return err
	}
	if len(c.Components) == 0 {
		return invalid("a bundle needs at least one component")
	}
	if len(c.Components) > lim.MaxLines {
		return invalid("a bundle may have at most %d components, got %d", lim.MaxLines, len(c.Components))
	}
	for i, comp := range c.Components {
		if err := checkName("sku", comp.SKU); err != nil {
			return invalid("components[%d]: %s", i, err.(*Error).Message)
		}
		if err := checkQuantity("quantity", comp.Quantity, lim); err != nil {
			return invalid("components[%d]: %s", i, err.(*Error).Message)
		}
		if comp.SKU == c.SKU {
			return invalid("components[%d]: a bundle cannot be a component of itself", i)
		}
	}
	if sku, dup := duplicateSKU(len(c.Components), func(i int) string { return c.Components[i].SKU }); dup {
		return invalid("component %q appears more than once; combine its quantities", sku)
	}
	return nil
}

// BundleDefined records a bundle's definition, in LocationPartition's log.
// The event's CommandID is the bundle SKU.
type BundleDefined struct {
	Bundle Bundle `json:"bundle"`
}

// BundleLine is a reservation line of a bundle as it was expanded: Quantity
// bundles, each of Components (per bundle unit) as the definition was when
// the reservation was decided.
type BundleLine struct {
	SKU        string            `json:"sku"`
	Quantity   int64             `json:"quantity"`
	Components []BundleComponent `json:"components"`
}

// BundlesReserved records, at a reservation's home, its bundle lines and
// what each expanded into. The component holds themselves are the
// reservation's StockReserved lines (or its saga's).
type BundlesReserved struct {
	Reservation string       `json:"reservation"`
	Lines       []BundleLine `json:"lines"`
}

// BundlesCommitted records, at a reservation's home, how many units of each
// of its bundles a commit took; the components' units are in the
// ReservationCommitted of their lines.
type BundlesCommitted struct {
	Reservation string       `json:"reservation"`
	Lines       []CommitLine `json:"lines"`
}

// The event types of bundles.
const (
	TypeBundleDefined    EventType = 70
	TypeBundlesReserved  EventType = 71
	TypeBundlesCommitted EventType = 72
)

// EventType implements EventData.
func (BundleDefined) EventType() EventType { return TypeBundleDefined }

// EventType implements EventData.
func (BundlesReserved) EventType() EventType { return TypeBundlesReserved }

// EventType implements EventData.
func (BundlesCommitted) EventType() EventType { return TypeBundlesCommitted }

// resBundle is a bundle line of a reservation, at its home.
type resBundle struct {
	line      BundleLine
	committed int64
}

func (x *decision) defineBundle(c DefineBundle) error {
	if x.s.partition != LocationPartition {
		return Errorf(CodeInternal, "bundles are defined in partition %d, not %d", LocationPartition, x.s.partition)
	}
	// Bundles do not nest, either way: a component that is a bundle, or a
	// bundle that is another's component, would make expansion recursive.
	for _, comp := range c.Components {
		if _, ok := x.s.bundles[comp.SKU]; ok {
			return invalid("component %q is a bundle: bundles do not nest", comp.SKU)
		}
	}
	for _, b := range x.s.bundles {
		if b.SKU != c.SKU && slices.ContainsFunc(b.Components, func(comp BundleComponent) bool { return comp.SKU == c.SKU }) {
			return invalid("%q is a component of bundle %q: bundles do not nest", c.SKU, b.SKU)
		}
	}
	b := Bundle{SKU: c.SKU, Components: slices.Clone(c.Components)}
	if old, ok := x.s.bundles[c.SKU]; ok && slices.Equal(old.Components, b.Components) {
		x.d.Replay = true
		return nil
	}
	x.emit("", c.SKU, BundleDefined{Bundle: b})
	return nil
}

// BundleResult is the answer to DefineBundle.
func (s *State) BundleResult(sku string) (Bundle, error) {
	if b, ok := s.bundles[sku]; ok {
		return b, nil
	}
	return Bundle{}, notFound("bundle", sku)
}

// stockless refuses a command that would give a bundle stock of its own: a
// bundle's stock is its components'.
func (s *State) stockless(sku string) error {
	if _, ok := s.bundles[sku]; ok {
		return invalid("%q is a bundle: it holds no stock of its own; receive its components", sku)
	}
	return nil
}

// expandLines decides a reservation's lines: every line of a bundle becomes
// its components × (quantity·n), with the bundle line's location choice,
// merged with the other lines of the same SKU, in the order SKUs first
// appear. It returns the lines to hold and the bundle lines, or lines itself
// and no bundle line when no line is a bundle (most carts: nothing is
// copied). Two lines that ask for one SKU at different locations cannot be
// held as one, and are refused.
func (s *State) expandLines(lines []ReserveLine) ([]ReserveLine, []BundleLine, error) {
	return s.bundles.Expand(lines, s.limits)
}

// Expand is how a reservation's lines are decided with these bundles (see
// State's expandLines); the engine uses it to tell which stock a refused
// cart asked for.
func (bs Bundles) Expand(lines []ReserveLine, lim Limits) ([]ReserveLine, []BundleLine, error) {
	if len(bs) == 0 || !slices.ContainsFunc(lines, func(l ReserveLine) bool { _, ok := bs[l.SKU]; return ok }) {
		return lines, nil, nil
	}
	var out []ReserveLine
	var bundles []BundleLine
	add := func(l ReserveLine) error {
		i := slices.IndexFunc(out, func(o ReserveLine) bool { return o.SKU == l.SKU })
		if i < 0 {
			out = append(out, l)
			return nil
		}
		o := &out[i]
		if o.Location != l.Location || !slices.Equal(o.Locations, l.Locations) || o.Split != l.Split {
			return invalid("sku %q is asked for by two lines (one through a bundle) with different locations; give them the same", l.SKU)
		}
		o.Quantity += l.Quantity
		return nil
	}
	for _, l := range lines {
		b, ok := bs[l.SKU]
		if !ok {
			if err := add(l); err != nil {
				return nil, nil, err
			}
			continue
		}
		bundles = append(bundles, BundleLine{SKU: l.SKU, Quantity: l.Quantity, Components: slices.Clone(b.Components)})
		for _, comp := range b.Components {
			c := l
			c.SKU, c.Quantity = comp.SKU, comp.Quantity*l.Quantity
			c.Locations = slices.Clone(l.Locations)
			if err := add(c); err != nil {
				return nil, nil, err
			}
		}
	}
	for _, l := range out {
		if l.Quantity > lim.MaxQuantity {
			return nil, nil, invalid("the cart asks for %d of %q, bundles included: more than %d", l.Quantity, l.SKU, lim.MaxQuantity)
		}
	}
	return out, bundles, nil
}

// commitBundles turns a commit's lines that name bundles of r into the units
// of their components, added to the lines naming those SKUs directly, and
// says how many units of each bundle the commit takes. A whole commit (no
// lines) takes every bundle whole. For a reservation without bundles it
// returns lines as they are.
func (r *reservation) commitBundles(lines []CommitLine) ([]CommitLine, []CommitLine, error) {
	if len(r.bundles) == 0 {
		return lines, nil, nil
	}
	taken := make([]CommitLine, len(r.bundles))
	for i, b := range r.bundles {
		taken[i] = CommitLine{SKU: b.line.SKU}
		if lines == nil {
			taken[i].Quantity = b.line.Quantity
		}
	}
	if lines == nil {
		return nil, taken, nil
	}
	out := make([]CommitLine, 0, len(lines)) // not nil: nil commits everything
	add := func(sku string, q int64) {
		if i := slices.IndexFunc(out, func(o CommitLine) bool { return o.SKU == sku }); i >= 0 {
			out[i].Quantity += q
			return
		}
		out = append(out, CommitLine{SKU: sku, Quantity: q})
	}
	for _, cl := range lines {
		i := slices.IndexFunc(r.bundles, func(b resBundle) bool { return b.line.SKU == cl.SKU })
		if i < 0 {
			add(cl.SKU, cl.Quantity)
			continue
		}
		b := r.bundles[i].line
		if cl.Quantity > b.Quantity {
			return nil, nil, invalid("cannot commit %d of bundle %q: the reservation holds %d", cl.Quantity, b.SKU, b.Quantity)
		}
		taken[i].Quantity = cl.Quantity
		for _, comp := range b.Components {
			add(comp.SKU, comp.Quantity*cl.Quantity)
		}
	}
	return out, taken, nil
}

// applyBundles applies the events of bundles.
func (s *State) applyBundles(d EventData) {
	switch d := d.(type) {
	case BundleDefined:
		c, _ := s.Catalog().Learn(d)
		s.bundles = c.Bundles
	case BundlesReserved:
		if r := s.reservations[d.Reservation]; r != nil {
			r.bundles = make([]resBundle, len(d.Lines))
			for i, l := range d.Lines {
				r.bundles[i] = resBundle{line: l}
			}
		}
	case BundlesCommitted:
		if r := s.reservations[d.Reservation]; r != nil {
			for _, cl := range d.Lines {
				for i := range r.bundles {
					if r.bundles[i].line.SKU == cl.SKU {
						r.bundles[i].committed = cl.Quantity
					}
				}
			}
		}
	}
}

// bundleViews renders a reservation's bundle lines: held, or once
// committed what was committed, with the component units each accounts for.
func (r *reservation) bundleViews() []ReservationBundle {
	if len(r.bundles) == 0 {
		return nil
	}
	out := make([]ReservationBundle, 0, len(r.bundles))
	for _, b := range r.bundles {
		v := ReservationBundle{SKU: b.line.SKU, Quantity: b.line.Quantity, Held: b.line.Quantity}
		if r.status == StatusCommitted {
			v.Quantity = b.committed
		}
		v.Components = make([]BundleComponent, len(b.line.Components))
		for i, comp := range b.line.Components {
			v.Components[i] = BundleComponent{SKU: comp.SKU, Quantity: comp.Quantity * v.Quantity}
		}
		out = append(out, v)
	}
	return out
}

// ReservationBundle is a bundle line of a reservation. Quantity is the
// bundles held or, once the reservation is committed, committed; Held keeps
// the bundles originally held. Components are the component units Quantity
// accounts for; they are held (and committed) by the reservation's lines of
// those SKUs, merged with any line of the same SKU the cart has of its own.
type ReservationBundle struct {
	SKU        string            `json:"sku"`
	Quantity   int64             `json:"quantity"`
	Held       int64             `json:"held"`
	Components []BundleComponent `json:"components"`
}

// BundleStock derives a bundle's stock from its components' states, in the
// order of b.Components: what can be sold of the bundle is, for the SKU and
// at each location, the least over components of floor(available ÷
// quantity). A location where some component has nothing available sells no
// bundle and is left out; so are on hand and reserved, which a bundle has
// none of. The answer says Derived, with the definition's components.
func BundleStock(b Bundle, components []SKUState) SKUState {
	v := SKUState{SKU: b.SKU, Derived: true, Components: slices.Clone(b.Components), Locations: []LocationState{}}
	if len(components) != len(b.Components) || len(components) == 0 {
		return v
	}
	v.Available = -1
	for i, comp := range b.Components {
		c := components[i]
		v.Available = minKits(v.Available, c.Available, comp.Quantity)
		if c.Position > v.Position {
			v.Position, v.AsOf = c.Position, c.AsOf
		}
	}
	// Locations where the first component is stocked are the candidates:
	// a location lacking any component sells no bundle.
	for _, ls := range components[0].Locations {
		n := int64(-1)
		for i, comp := range b.Components {
			idx := slices.IndexFunc(components[i].Locations, func(o LocationState) bool { return o.Location == ls.Location })
			if idx < 0 {
				n = 0
				break
			}
			n = minKits(n, components[i].Locations[idx].Available, comp.Quantity)
		}
		if n > 0 {
			v.Locations = append(v.Locations, LocationState{Location: ls.Location, Available: n, Lots: []LotView{}, Holds: []HoldView{}})
		}
	}
	slices.SortFunc(v.Locations, func(a, b LocationState) int {
		switch {
		case a.Location < b.Location:
			return -1
		case a.Location > b.Location:
			return 1
		}
		return 0
	})
	return v
}

// minKits is the least of so (-1 for none yet) and the kits available units
// make at q units a kit, never below 0.
func minKits(so, available, q int64) int64 {
	n := max(available, 0) / q
	if so < 0 || n < so {
		return n
	}
	return so
}

// BundleAvailability derives a bundle's availability from its components'
// items, in the order of b.Components, as BundleStock does.
func BundleAvailability(b Bundle, components []AvailabilityItem) AvailabilityItem {
	states := make([]SKUState, len(components))
	for i, c := range components {
		states[i] = SKUState{SKU: c.SKU, Available: c.Available}
		for _, l := range c.Locations {
			states[i].Locations = append(states[i].Locations, LocationState{Location: l.Location, Available: l.Available})
		}
	}
	v := BundleStock(b, states)
	out := AvailabilityItem{SKU: b.SKU, Available: v.Available, Derived: true, Components: v.Components, Locations: make([]LocationAvailability, 0, len(v.Locations))}
	for _, l := range v.Locations {
		out.Locations = append(out.Locations, LocationAvailability{Location: l.Location, Available: l.Available})
	}
	return out
}

// DeriveBundleSKU reads the state of each of b's components with get, at
// the same moment, and derives the bundle's (BundleStock). A component
// never stocked counts as none available. The definition is the current
// one, also for a past moment.
func DeriveBundleSKU(ctx context.Context, b Bundle, at AsOf, get func(context.Context, string, AsOf) (SKUState, error)) (SKUState, error) {
	states := make([]SKUState, len(b.Components))
	for i, comp := range b.Components {
		v, err := get(ctx, comp.SKU, at)
		if IsCode(err, CodeNotFound) {
			v, err = SKUState{SKU: comp.SKU}, nil
		}
		if err != nil {
			return SKUState{}, err
		}
		states[i] = v
	}
	return BundleStock(b, states), nil
}
