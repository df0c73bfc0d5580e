package bench

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

type scanned struct {
	Status int
	Code   string
}

// reference decodes a batch response with encoding/json.
func reference(body []byte) ([]scanned, error) {
	var v struct {
		Results []struct {
			Status  int `json:"status"`
			Problem *struct {
				Code string `json:"code"`
			} `json:"problem"`
		} `json:"results"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return nil, err
	}
	out := []scanned{}
	for _, r := range v.Results {
		s := scanned{Status: r.Status}
		if r.Problem != nil {
			s.Code = r.Problem.Code
		}
		out = append(out, s)
	}
	return out, nil
}

func scan(body []byte) ([]scanned, error) {
	out := []scanned{}
	n, err := scanBatchResults(body, func(status int, code string) {
		out = append(out, scanned{status, code})
	})
	if err == nil && n != len(out) {
		return nil, fmt.Errorf("n = %d, calls = %d", n, len(out))
	}
	return out, err
}

func TestScanBatchResultsMatchesEncodingJSON(t *testing.T) {
	bodies := []string{
		`{"results":[]}`,
		`{"results":null}`,
		`{}`,
		`{"results":[{"status":201,"body":{"id":"a","status":"held","lines":[{"sku":"hot","quantity":1,"allocations":[{"location":"w1","quantity":1}]}]}}]}`,
		// A problem has its own "status": only the result's counts.
		`{"results":[{"status":409,"problem":{"type":"about:blank","title":"x","status":409,"code":"insufficient_stock","lines":[{"sku":"hot","requested":1,"available":0}]}}]}`,
		// Keys in any order, whitespace, escapes, brackets inside strings.
		" { \"other\" : [1, {\"a\": \"]}\"}], \"results\" : [ { \"body\" : { \"s\" : \"a\\\"b}]\" } , \"status\" : 200 } ,\n\t{\"problem\":{\"code\":\"over\\u006coaded\",\"detail\":\"x\\\\\"},\"status\":503} ] , \"n\": -1.5e3, \"t\": true, \"f\": null } ",
		`{"results":[{"status":201,"body":null},{"status":422,"problem":{"code":"invalid_request"}},{"status":201}]}`,
		`{"res\u0075lts":[{"status":201}]}`,
	}
	for _, b := range bodies {
		want, err := reference([]byte(b))
		if err != nil {
			t.Fatalf("reference rejects %s: %v", b, err)
		}
		got, err := scan([]byte(b))
		if err != nil {
			t.Errorf("scan(%s): %v", b, err)
			continue
		}
		if !slices.Equal(got, want) {
			t.Errorf("scan(%s) = %v, want %v", b, got, want)
		}
	}
}

func TestScanBatchResultsRejectsMalformed(t *testing.T) {
	for _, b := range []string{
		``, `[]`, `{"results":[`, `{"results":[{"status":"201"}]}`, `{"results":[{"status":201}]`,
		`{"results":[{"status":201}]} x`, `{"results":[{"status":201},]}`, `{"results" [ ]}`, `{"results":[{"status":201,"body":{"a":"b}]}`,
	} {
		if got, err := scan([]byte(b)); err == nil {
			t.Errorf("scan(%q) = %v, want an error", b, got)
		}
	}
}

func TestScanBatchResultsRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	statuses := []int{200, 201, 409, 422, 429, 503}
	codes := []string{"insufficient_stock", "overloaded", "invalid_request", `we"ird\code`}
	for range 200 {
		type res struct {
			Status  int            `json:"status"`
			Body    map[string]any `json:"body,omitempty"`
			Problem map[string]any `json:"problem,omitempty"`
		}
		var v struct {
			Results []res `json:"results"`
		}
		for range rng.IntN(20) {
			st := statuses[rng.IntN(len(statuses))]
			if st < 300 {
				v.Results = append(v.Results, res{Status: st, Body: map[string]any{"id": "x}", "status": "held", "n": []any{1, "]", map[string]any{}}}})
			} else {
				v.Results = append(v.Results, res{Status: st, Problem: map[string]any{"status": st, "code": codes[rng.IntN(len(codes))], "lines": []any{}}})
			}
		}
		b, _ := json.Marshal(v)
		want, _ := reference(b)
		got, err := scan(b)
		if err != nil || !slices.Equal(got, want) {
			t.Fatalf("scan(%s) = %v, %v; want %v", b, got, err, want)
		}
	}
}

func BenchmarkScanBatchResults(b *testing.B) {
	var body []byte
	body = append(body, `{"results":[`...)
	for i := range 100 {
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, `{"status":201,"body":{"id":"abcdef01-sh1-12-345","status":"held","expires_at":"2026-11-21T14:00:00Z","lines":[{"sku":"hot","quantity":1,"allocations":[{"location":"w1","quantity":1}]}]}}`...)
	}
	body = append(body, "]}"...)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		scanBatchResults(body, func(int, string) {})
	}
}
