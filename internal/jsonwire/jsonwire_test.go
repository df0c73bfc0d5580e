package jsonwire

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// FuzzAppendString: AppendString writes what json.Marshal writes.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", `<a href="x">&amp;</a>`, "\\\b\f\n\r\t\x00\x1f\x7f", "\u2028\u2029é😀", "\xff\xfe", "a\xc3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := AppendString(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("AppendString(%q) = %s, json.Marshal %s", s, got, want)
		}
	})
}

// TestAppendTime: AppendTime writes what time.Time.MarshalJSON writes, and
// declines what it refuses.
func TestAppendTime(t *testing.T) {
	for _, at := range []time.Time{
		{},
		time.Date(2026, 12, 2, 16, 56, 7, 123456789, time.UTC),
		time.Date(2026, 12, 2, 16, 56, 7, 0, time.FixedZone("", 2*3600+30*60)),
		time.Date(2026, 12, 2, 16, 56, 7, 100, time.FixedZone("", -7*3600)),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("", 24*3600)),
		time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("", 3600+30)),
	} {
		want, err := at.MarshalJSON()
		got, ok := AppendTime([]byte("x"), at)
		if ok != (err == nil) || (ok && !bytes.Equal(got[1:], want)) || (!ok && string(got) != "x") {
			t.Errorf("AppendTime(%v) = %s %v, MarshalJSON %s %v", at, got, ok, want, err)
		}
	}
}

// FuzzReader: what a Reader takes is valid JSON, and Skip returns the
// value whole.
func FuzzReader(f *testing.F) {
	for _, s := range []string{`{"a":[1,-0,2.5e-3,true,false,null,"x\u00e9\n"]}`, `{"a":1,"a":2}`, `[1,]`, `"\ud800"`, `01`, `{"a":{"b":{}}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewReader(data)
		v := r.Skip()
		r.End()
		if r.Failed() {
			return
		}
		if !json.Valid(data) || !bytes.Equal(bytes.TrimSpace(v), bytes.TrimSpace(data)) {
			t.Fatalf("Reader took %q (value %q)", data, v)
		}
	})
}
