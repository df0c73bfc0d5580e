package auth

import (
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stockd/stockd"
)

// fakeClock is a clock that moves only when told to; it is safe for
// concurrent use.
type fakeClock struct{ ns atomic.Int64 }

var clockBase = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func (c *fakeClock) Now() time.Time          { return clockBase.Add(time.Duration(c.ns.Load())) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

func testRing(t *testing.T, clock *fakeClock, keys ...Key) *Keyring {
	t.Helper()
	var opts []Option
	if clock != nil {
		opts = append(opts, WithClock(clock.Now))
	}
	r, err := NewKeyring(keys, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func key(name string, rate float64, burst int, scopes ...stockd.Scope) Key {
	return Key{Name: name, Scopes: scopes, Rate: rate, Burst: burst, Hash: Hash("token-of-" + name)}
}

func TestAuthenticateFindsAKeyByTheHashOfItsToken(t *testing.T) {
	r := testRing(t, nil, key("shop", 0, 0, stockd.ScopeStockRead), key("ops", 0, 0, stockd.ScopeAdmin))
	for _, name := range []string{"shop", "ops"} {
		k, err := r.Authenticate("token-of-" + name)
		if err != nil || k.Name != name {
			t.Errorf("token of %s: got %v, %v", name, k, err)
		}
	}
	if r.Len() != 2 {
		t.Errorf("Len %d, want 2", r.Len())
	}
}

func TestAnUnknownTokenIsRefusedWithoutEchoingIt(t *testing.T) {
	r := testRing(t, nil, key("shop", 0, 0, stockd.ScopeStockRead))
	for _, token := range []string{
		"",
		"token-of-nobody",
		"TOKEN-OF-SHOP",
		"token-of-shop ",
		NewToken(),
		HashHex("token-of-shop"), // the hash is not the key
		strings.Repeat("x", MaxTokenLength+1),
	} {
		k, err := r.Authenticate(token)
		if k != nil || !stockd.IsCode(err, stockd.CodeUnauthenticated) {
			t.Errorf("%q: got %v, %v; want unauthenticated", token, k, err)
			continue
		}
		if token != "" && strings.Contains(err.Error(), token) {
			t.Errorf("the error %q echoes the token", err)
		}
	}
}

func TestAKeyWithoutTheScopeIsForbiddenWhileAdminMayDoEverything(t *testing.T) {
	shop := key("shop", 0, 0, stockd.ScopeStockRead, stockd.ScopeReservationsWrite)
	ops := key("ops", 0, 0, stockd.ScopeAdmin)
	for _, need := range stockd.Scopes {
		if err := Authorize(&ops, need); err != nil {
			t.Errorf("admin refused %s: %v", need, err)
		}
	}
	for _, need := range []stockd.Scope{stockd.ScopeStockRead, stockd.ScopeReservationsWrite} {
		if err := Authorize(&shop, need); err != nil {
			t.Errorf("shop refused %s: %v", need, err)
		}
	}
	for _, need := range []stockd.Scope{stockd.ScopeStockWrite, stockd.ScopeAdmin} {
		err := Authorize(&shop, need)
		if !stockd.IsCode(err, stockd.CodeForbidden) {
			t.Errorf("shop got %v for %s, want forbidden", err, need)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, `"shop"`) || !strings.Contains(msg, string(need)) {
			t.Errorf("%q does not name the key and the scope %s", msg, need)
		}
	}
	if err := Authorize(nil, stockd.ScopeStockRead); !stockd.IsCode(err, stockd.CodeUnauthenticated) {
		t.Errorf("no key: got %v, want unauthenticated", err)
	}
}

func TestNewKeyringRefusesInvalidAndRepeatedKeys(t *testing.T) {
	a := key("a", 0, 0, stockd.ScopeAdmin)
	sameName := key("a", 0, 0, stockd.ScopeAdmin)
	sameName.Hash = Hash("another")
	sameHash := key("b", 0, 0, stockd.ScopeAdmin)
	sameHash.Hash = a.Hash
	for _, keys := range [][]Key{
		{a, sameName},
		{a, sameHash},
		{key("B", 0, 0, stockd.ScopeAdmin)},
		{key("c", 0, 0)},
		{key("d", 1, 0, stockd.ScopeAdmin)},
		{key("e", 0, 1, stockd.ScopeAdmin)},
	} {
		if _, err := NewKeyring(keys); err == nil {
			t.Errorf("%+v: accepted", keys)
		}
	}
}

func TestNewKeyringKeepsItsOwnCopyOfTheScopes(t *testing.T) {
	k := key("a", 0, 0, stockd.ScopeStockRead)
	r := testRing(t, nil, k)
	k.Scopes[0] = stockd.ScopeAdmin
	got, _ := r.Authenticate("token-of-a")
	if Authorize(got, stockd.ScopeAdmin) == nil {
		t.Error("changing the caller's slice changed the key's scopes")
	}
}

func TestBearerTokenReadsTheAuthorizationHeader(t *testing.T) {
	token := NewToken()
	for header, want := range map[string]string{
		"Bearer " + token:            token,
		"bearer " + token:            token,
		"BEARER " + token:            token,
		"bEaReR " + token:            token,
		"Bearer   " + token:          token, // 1*SP
		" Bearer " + token + " ":     token, // surrounding whitespace is not part of a field value
		"Bearer abc-._~+/XYZ09==":    "abc-._~+/XYZ09==",
		"Bearer a":                   "a",
		"":                           "",
		"Bearer":                     "",
		"Bearer ":                    "",
		"Bearer  ":                   "",
		"Bearer ==":                  "",
		"Bearer a=b":                 "",
		"Bearer\t" + token:           "",
		"Bearer" + token:             "",
		"Basic dXNlcjpwYXNz":         "",
		"Token " + token:             "",
		"Bearer " + token + " extra": "",
		"Bearer " + token + ",x=y":   "",
		"Bearer tok\x00en":           "",
		"Bearer tøken":               "",
		"Bearer " + token + "\n":     "", // only spaces and tabs surround a field value
	} {
		got, ok := BearerToken(header)
		if got != want || ok != (want != "") {
			t.Errorf("BearerToken(%q) = %q, %v; want %q", header, got, ok, want)
		}
	}
}

func TestRetryAfterSecondsRoundsUpToAWholeSecondAtLeastOne(t *testing.T) {
	for d, want := range map[time.Duration]int{
		0:                       1,
		time.Nanosecond:         1,
		500 * time.Millisecond:  1,
		time.Second:             1,
		time.Second + 1:         2,
		2500 * time.Millisecond: 3,
		time.Minute:             60,
	} {
		if got := RetryAfterSeconds(d); got != want {
			t.Errorf("RetryAfterSeconds(%v) = %d, want %d", d, got, want)
		}
	}
}

func TestTheBucketLetsBurstThroughThenRefusesWithTheTimeToTheNextToken(t *testing.T) {
	clock := &fakeClock{}
	k := key("shop", 2, 3, stockd.ScopeStockRead) // 2 per second, 3 at once
	r := testRing(t, clock, k)
	for i := range 3 {
		if ok, _ := r.Allow(&k); !ok {
			t.Fatalf("request %d of the burst refused", i+1)
		}
	}
	ok, wait := r.Allow(&k)
	if ok || wait != 500*time.Millisecond {
		t.Fatalf("after the burst: %v, %v; want refused for 500ms", ok, wait)
	}
	// A refusal spends nothing: asking again says the same.
	if ok, again := r.Allow(&k); ok || again != wait {
		t.Fatalf("asked again: %v, %v", ok, again)
	}
	clock.Advance(499 * time.Millisecond)
	if ok, wait := r.Allow(&k); ok || wait != time.Millisecond {
		t.Fatalf("1ms early: %v, %v; want refused for 1ms", ok, wait)
	}
	clock.Advance(time.Millisecond)
	if ok, _ := r.Allow(&k); !ok {
		t.Fatal("refused when a token was due")
	}
	if ok, wait := r.Allow(&k); ok || wait != 500*time.Millisecond {
		t.Fatalf("after spending the new token: %v, %v", ok, wait)
	}
}

func TestTheBucketRefillsAtRateUpToBurst(t *testing.T) {
	clock := &fakeClock{}
	k := key("shop", 2, 3, stockd.ScopeStockRead)
	r := testRing(t, clock, k)
	drain := func() int {
		n := 0
		for {
			if ok, _ := r.Allow(&k); !ok {
				return n
			}
			n++
		}
	}
	if n := drain(); n != 3 {
		t.Fatalf("a new bucket gave %d, want the burst of 3", n)
	}
	clock.Advance(time.Second)
	if n := drain(); n != 2 {
		t.Fatalf("one second later: %d, want the rate of 2", n)
	}
	clock.Advance(1250 * time.Millisecond)
	if n := drain(); n != 2 {
		t.Fatalf("1.25 s later: %d, want 2", n)
	}
	clock.Advance(250 * time.Millisecond) // the half token left over and this quarter make one
	if n := drain(); n != 1 {
		t.Fatalf("0.25 s later: %d, want 1", n)
	}
	clock.Advance(time.Hour)
	if n := drain(); n != 3 {
		t.Fatalf("an hour later: %d, want no more than the burst of 3", n)
	}
}

func TestASlowRateRefusesForMoreThanASecond(t *testing.T) {
	clock := &fakeClock{}
	k := key("ops", 0.5, 1, stockd.ScopeAdmin)
	r := testRing(t, clock, k)
	r.Allow(&k)
	clock.Advance(500 * time.Millisecond)
	ok, wait := r.Allow(&k)
	if ok || wait != 1500*time.Millisecond || RetryAfterSeconds(wait) != 2 {
		t.Fatalf("got %v, %v; want refused for 1.5s (Retry-After 2)", ok, wait)
	}
}

func TestKeysWithoutARateAreUnlimitedAndBucketsAreNotShared(t *testing.T) {
	clock := &fakeClock{}
	free := key("free", 0, 0, stockd.ScopeStockRead)
	a := key("a", 1, 1, stockd.ScopeStockRead)
	b := key("b", 1, 1, stockd.ScopeStockRead)
	r := testRing(t, clock, free, a, b)
	for range 10_000 {
		if ok, _ := r.Allow(&free); !ok {
			t.Fatal("a key without a rate was refused")
		}
	}
	if ok, _ := r.Allow(&a); !ok {
		t.Fatal("a refused")
	}
	if ok, _ := r.Allow(&b); !ok {
		t.Fatal("b refused after a spent its own token")
	}
	if ok, _ := r.Allow(&a); ok {
		t.Fatal("a allowed twice in its burst of 1")
	}
}

func TestConcurrentAllowNeverGrantsMoreThanBurstPlusRateTimesElapsed(t *testing.T) {
	clock := &fakeClock{}
	const rate, burst = 3.0, 5 // 3 per second: an interval that is not a whole number of nanoseconds
	interval := time.Duration(math.Ceil(float64(time.Second) / rate))
	k := key("hot", rate, burst, stockd.ScopeStockRead)
	r := testRing(t, clock, k)
	var granted atomic.Int64
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 2000 {
				if g == 0 && i%10 == 0 {
					clock.Advance(7 * time.Millisecond)
				}
				if ok, wait := r.Allow(&k); ok {
					granted.Add(1)
				} else if wait <= 0 || wait > interval {
					t.Errorf("refused with a wait of %v", wait)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Duration(clock.ns.Load()).Seconds()
	limit := burst + int64(rate*elapsed)
	if got := granted.Load(); got > limit {
		t.Fatalf("granted %d in %.2fs, more than burst + rate × elapsed = %d", got, elapsed, limit)
	}
	if got := granted.Load(); got < burst {
		t.Fatalf("granted only %d, less than the burst", got)
	}
}

func TestAuthenticateAndAllowDoNotAllocate(t *testing.T) {
	clock := &fakeClock{}
	k := key("hot", 1000, 10, stockd.ScopeStockRead)
	r := testRing(t, clock, k)
	token := "token-of-hot"
	if n := testing.AllocsPerRun(1000, func() {
		got, err := r.Authenticate(token)
		if err != nil {
			t.Fatal(err)
		}
		r.Allow(got)
		clock.Advance(time.Millisecond)
	}); n != 0 {
		t.Errorf("%v allocations per request, want 0", n)
	}
}

func BenchmarkAuthenticateAuthorizeAllow(b *testing.B) {
	keys := make([]Key, 100)
	for i := range keys {
		keys[i] = key(fmt.Sprintf("k%d", i), 1e6, 1e6, stockd.ScopeStockRead)
	}
	r, err := NewKeyring(keys)
	if err != nil {
		b.Fatal(err)
	}
	token := "token-of-" + keys[42].Name
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			k, err := r.Authenticate(token)
			if err != nil {
				b.Fatal(err)
			}
			if err := Authorize(k, stockd.ScopeStockRead); err != nil {
				b.Fatal(err)
			}
			r.Allow(k)
		}
	})
}
