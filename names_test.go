package stockd

import (
	"errors"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
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

// TestLookAlikeNamesAreRefused: a name with an invisible character, another
// kind of space or a decomposed accent looks exactly like a name without it,
// so accepting it would let a second SKU (or location, or customer) be created
// that no one can tell from the first. Each is refused, naming the field and
// the character.
func TestLookAlikeNamesAreRefused(t *testing.T) {
	for _, tc := range []struct {
		name, value, message string
	}{
		{"zero-width space", "A\u200bB", "sku contains U+200B, a format character (invisible); names may not contain control or format characters"},
		{"zero-width joiner", "A\u200d", "sku contains U+200D, a format character (invisible)"},
		{"zero-width non-joiner", "\u200cA", "sku contains U+200C, a format character (invisible)"},
		{"word joiner", "A\u2060B", "sku contains U+2060, a format character (invisible)"},
		{"right-to-left override", "\u202eA-1", "sku contains U+202E, a format character (invisible)"},
		{"left-to-right mark", "A-1\u200e", "sku contains U+200E, a format character (invisible)"},
		{"right-to-left isolate", "A\u2067B\u2069", "sku contains U+2067, a format character (invisible)"},
		{"byte order mark", "\ufeffA", "sku contains U+FEFF, a format character (invisible)"},
		{"soft hyphen", "Gou\u00adda", "sku contains U+00AD, a format character (invisible)"},
		{"Mongolian vowel separator", "A\u180eB", "sku contains U+180E, a format character (invisible)"},
		{"tag character", "A\U000E0041", "sku contains U+E0041, a format character (invisible)"},
		{"tab", "A\tB", "sku contains U+0009, a control character; names may not contain control or format characters"},
		{"newline", "A\nB", "sku contains U+000A, a control character"},
		{"NUL", "A\x00", "sku contains U+0000, a control character"},
		{"DEL", "A\x7f", "sku contains U+007F, a control character"},
		{"C1 control", "A\u0085B", "sku contains U+0085, a control character"},
		{"C1 control in a non-ASCII name", "é\u009b", "sku contains U+009B, a control character"},
		{"no-break space", "A\u00a0B", "sku contains U+00A0, a space other than U+0020"},
		{"narrow no-break space", "A\u202fB", "sku contains U+202F, a space other than U+0020"},
		{"ideographic space", "A\u3000B", "sku contains U+3000, a space other than U+0020"},
		{"em space", "A\u2003B", "sku contains U+2003, a space other than U+0020"},
		{"line separator", "A\u2028B", "sku contains U+2028, a space other than U+0020"},
		{"leading space", " A", "sku may not begin or end with a space"},
		{"trailing space", "A ", "sku may not begin or end with a space"},
		{"only a space", " ", "sku may not begin or end with a space"},
		{"leading no-break space", "\u00a0A", "sku contains U+00A0, a space other than U+0020"},
		{"slash", "A/B", "sku contains U+002F, a slash"},
		{"slash in a non-ASCII name", "é/B", "sku contains U+002F, a slash"},
		{"decomposed accent", "Cafe\u0301", `sku is not in Unicode normalization form C (NFC): send it composed, as "Café"`},
		{"decomposed Hangul", "\u1100\u1161", `sku is not in Unicode normalization form C (NFC): send it composed, as "가"`},
		{"Angstrom sign", "\u212b", `sku is not in Unicode normalization form C (NFC): send it composed, as "Å"`},
		{"not UTF-8", "A\xff", "sku is not valid UTF-8"},
		{"dot", ".", `sku may not be "."`},
		{"dot dot", "..", `sku may not be ".."`},
		{"too long", strings.Repeat("é", MaxIDLength/2+1), "sku is longer than 128 bytes"},
		{"empty", "", "sku is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckName("sku", tc.value)
			var e *Error
			if !errors.As(err, &e) || e.Code != CodeInvalid {
				t.Fatalf("CheckName(%q) = %v, want invalid_request", tc.value, err)
			}
			if !strings.HasPrefix(e.Message, tc.message) {
				t.Fatalf("CheckName(%q) = %q, want it to start %q", tc.value, e.Message, tc.message)
			}
			// Every command applies the same rule to the field it names.
			cmd := ReceiveStock{ID: "r1", SKU: tc.value, Location: "w1", Quantity: 1}
			if err := cmd.Validate(DefaultLimits); !IsCode(err, CodeInvalid) || !strings.HasPrefix(err.(*Error).Message, tc.message) {
				t.Fatalf("ReceiveStock with sku %q: %v", tc.value, err)
			}
		})
	}
}

// TestNamesAccepted: names that follow the rules, including spaces between
// words and letters outside ASCII, in NFC, are accepted; every name accepted
// before the rules were tightened, except those with a format character or
// not in NFC, still is.
func TestNamesAccepted(t *testing.T) {
	for _, v := range []string{
		"A", "sku-1", "SKU_1.v2", "a:b", "cart#42", "x@y", "50%", "~user", "a..b", ".hidden", "...",
		"Gouda 500g", "LOT 2027 11", "Café", "Käse-Gouda", "東京-倉庫", "가", "Ωmega", "emoji-🧀",
		"א-1", // right-to-left letters are letters, not format characters
		strings.Repeat("x", MaxIDLength), strings.Repeat("é", MaxIDLength/2),
	} {
		if err := CheckName("sku", v); err != nil {
			t.Errorf("CheckName(%q) = %v, want nil", v, err)
		}
	}
}

// TestEveryNameFieldIsChecked: each command checks every id and name it
// carries by the same rules, and says which field is wrong.
func TestEveryNameFieldIsChecked(t *testing.T) {
	const zw = "x\u200b"
	l := func(sku string) []ReserveLine { return []ReserveLine{{SKU: sku, Quantity: 1}} }
	for _, tc := range []struct {
		cmd   Command
		field string
	}{
		{ConfigureLocation{ID: zw, Kind: KindStore}, "location id"},
		{ConfigureLocation{ID: "w1", Kind: KindStore, Region: zw}, "region"},
		{ConfigureSKU{SKU: zw}, "sku"},
		{ReceiveStock{ID: zw, SKU: "A", Location: "w1", Quantity: 1}, "id"},
		{ReceiveStock{ID: "r", SKU: "A", Location: zw, Quantity: 1}, "location"},
		{ReceiveStock{ID: "r", SKU: "A", Location: "w1", Quantity: 1, Lot: zw}, "lot"},
		{AdjustStock{ID: zw, SKU: "A", Location: "w1", Delta: 1, Reason: ReasonFound}, "id"},
		{AdjustStock{ID: "a", SKU: zw, Location: "w1", Delta: 1, Reason: ReasonFound}, "sku"},
		{AdjustStock{ID: "a", SKU: "A", Location: zw, Delta: 1, Reason: ReasonFound}, "location"},
		{AdjustStock{ID: "a", SKU: "A", Location: "w1", Delta: 1, Reason: ReasonFound, Lot: zw}, "lot"},
		{CountStock{ID: zw, SKU: "A", Location: "w1"}, "id"},
		{CountStock{ID: "c", SKU: "A", Location: zw}, "location"},
		{TransferStock{ID: zw, SKU: "A", From: "w1", To: "w2", Quantity: 1}, "id"},
		{TransferStock{ID: "t", SKU: "A", From: zw, To: "w2", Quantity: 1}, "from"},
		{TransferStock{ID: "t", SKU: "A", From: "w1", To: zw, Quantity: 1}, "to"},
		{ArriveTransfer{ID: zw}, "transfer id"},
		{Reserve{ID: zw, Lines: l("A")}, "id"},
		{Reserve{ID: "c", Customer: zw, Lines: l("A")}, "customer"},
		{Reserve{ID: "c", Region: zw, Lines: l("A")}, "region"},
		{Reserve{ID: "c", Lines: l(zw)}, "lines[0]: sku"},
		{Reserve{ID: "c", Lines: []ReserveLine{{SKU: "A", Quantity: 1, Location: zw}}}, "lines[0]: location"},
		{Reserve{ID: "c", Lines: []ReserveLine{{SKU: "A", Quantity: 1, Locations: []string{"w1", zw}}}}, "lines[0]: locations"},
		{ExtendReservation{ID: zw, TTL: time.Minute}, "reservation id"},
		{ExtendReservation{ID: "c", TTL: time.Minute, Key: zw}, "idempotency key"},
		{CommitReservation{ID: zw}, "reservation id"},
		{CommitReservation{ID: "c", Key: zw}, "idempotency key"},
		{CommitReservation{ID: "c", Lines: []CommitLine{{SKU: zw, Quantity: 1}}}, "lines[0]: sku"},
		{ReleaseReservation{ID: zw}, "reservation id"},
		{ReleaseReservation{ID: "c", Key: zw}, "idempotency key"},
	} {
		err := tc.cmd.Validate(DefaultLimits)
		want := tc.field + " contains U+200B, a format character"
		if !IsCode(err, CodeInvalid) || !strings.HasPrefix(err.(*Error).Message, want) {
			t.Errorf("%T%+v: Validate = %v, want %q", tc.cmd, tc.cmd, err, want)
		}
	}
}

// FuzzCheckName: whatever CheckName accepts follows the rules — in
// particular it is NFC and has no control or format character — and whatever
// it refuses is refused as invalid_request.
func FuzzCheckName(f *testing.F) {
	for _, s := range []string{"A", "sku-1", "Gouda 500g", "Café", "Cafe\u0301", "A\u200bB", "\u202eA", "\ufeffA",
		"Gou\u00adda", " A", "A ", "A\u00a0B", "a/b", ".", "..", "\xff", "東京", "\u1100\u1161", strings.Repeat("x", 129)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := CheckName("name", s)
		if err != nil {
			if !IsCode(err, CodeInvalid) {
				t.Fatalf("CheckName(%q) = %v, want invalid_request", s, err)
			}
			return
		}
		switch {
		case len(s) == 0 || len(s) > MaxIDLength:
			t.Fatalf("accepted %q of %d bytes", s, len(s))
		case !utf8.ValidString(s):
			t.Fatalf("accepted %q, not UTF-8", s)
		case !norm.NFC.IsNormalString(s):
			t.Fatalf("accepted %q, not NFC", s)
		case s == "." || s == "..":
			t.Fatalf("accepted %q", s)
		case s[0] == ' ' || s[len(s)-1] == ' ':
			t.Fatalf("accepted %q with a space at an end", s)
		}
		for _, r := range s {
			if unicode.Is(unicode.Cc, r) || unicode.Is(unicode.Cf, r) || r == '/' || (r != ' ' && unicode.IsSpace(r)) {
				t.Fatalf("accepted %q containing U+%04X", s, r)
			}
		}
	})
}

// TestCheckNameAllocatesNothing: names are checked on every command, on the
// hot path; checking one, ASCII or not, allocates nothing.
func TestCheckNameAllocatesNothing(t *testing.T) {
	for _, s := range []string{"SKU-ABC-000123", "Gouda 500g", "réception-0001", "東京-倉庫", "가-1", "emoji-🧀"} {
		if n := testing.AllocsPerRun(100, func() { _ = CheckName("sku", s) }); n != 0 {
			t.Errorf("CheckName(%q) allocates %v times", s, n)
		}
	}
}
