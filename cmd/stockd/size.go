package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/stockd/stockd/pebble"
)

// byteSize is a flag of a number of bytes, written as 512MiB, 2GiB, 100MB
// or a plain number; a negative number means "off" where the flag says so.
type byteSize int64

func (b *byteSize) String() string {
	if *b < 0 {
		return strconv.FormatInt(int64(*b), 10)
	}
	return strings.ReplaceAll(pebble.Bytes(*b).String(), " ", "")
}

func (b *byteSize) Set(s string) error {
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1}}
	num, mult := strings.TrimSpace(s), int64(1)
	for _, u := range units {
		if n, ok := strings.CutSuffix(num, u.suffix); ok {
			num, mult = strings.TrimSpace(n), u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return fmt.Errorf("%q is not a size like 256MiB, 2GiB or 1000000", s)
	}
	*b = byteSize(f * float64(mult))
	return nil
}
