package archive

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"strings"
	"sync"

	"github.com/klauspost/compress/zstd"

	"github.com/stockd/stockd"
)

// magic opens every segment; its last byte is the format version.
const magic = "STKDSEG1"

// headerSize is the size of a segment's fixed header.
const headerSize = len(magic) + 2 + 8 + 8 + 4 + 8 + 8 + 8 + 8 + 4 + 4 + 4

// maxSectionSize bounds a section read from a segment, so that a corrupt
// length cannot make a reader allocate without limit.
const maxSectionSize = 1 << 31

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrCorrupt is wrapped by the errors of a segment that fails its checks.
var ErrCorrupt = errors.New("archive: corrupt segment")

// header is a segment's fixed header.
type header struct {
	Partition         int
	First, Last       uint64
	Count             uint32
	MinTime, MaxTime  int64
	IndexLen, DataLen uint64
	IndexCRC, DataCRC uint32
}

// skuEntry is one SKU's line in a segment's index.
type skuEntry struct {
	SKU                       string
	FirstVersion, LastVersion uint64
	FirstPos, LastPos         uint64
	Count                     uint64
}

var (
	encoderOnce sync.Once
	encoder     *zstd.Encoder
	decoder     *zstd.Decoder
)

// codecs returns the shared zstd encoder and decoder, whose EncodeAll and
// DecodeAll are safe for concurrent use.
func codecs() (*zstd.Encoder, *zstd.Decoder) {
	encoderOnce.Do(func() {
		var err error
		encoder, err = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
		if err != nil {
			panic(err)
		}
		decoder, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(maxSectionSize))
		if err != nil {
			panic(err)
		}
	})
	return encoder, decoder
}

// segmentKey is the object name of partition p's segment starting at first.
func segmentKey(p int, first uint64) string {
	return fmt.Sprintf("%s%020d.seg", partitionPrefix(p), first)
}

// partitionPrefix is the common prefix of partition p's segments.
func partitionPrefix(p int) string { return fmt.Sprintf("p%05d/", p) }

// parseKey returns the partition and first position a segment name carries.
func parseKey(key string) (p int, first uint64, ok bool) {
	var rest string
	if n, err := fmt.Sscanf(key, "p%05d/%s", &p, &rest); n != 2 || err != nil {
		return 0, 0, false
	}
	num, found := strings.CutSuffix(rest, ".seg")
	if !found || len(num) != 20 {
		return 0, 0, false
	}
	if _, err := fmt.Sscanf(num, "%d", &first); err != nil || segmentKey(p, first) != key {
		return 0, 0, false
	}
	return p, first, true
}

// encodeSegment encodes the consecutive events of partition p, which must
// not be empty.
func encodeSegment(p int, events []stockd.Event) ([]byte, header) {
	enc, _ := codecs()
	h := header{
		Partition: p,
		First:     events[0].Position,
		Last:      events[len(events)-1].Position,
		Count:     uint32(len(events)),
		MinTime:   events[0].Time.UnixNano(),
		MaxTime:   events[0].Time.UnixNano(),
	}
	index := make(map[string]*skuEntry)
	for _, e := range events {
		h.MinTime = min(h.MinTime, e.Time.UnixNano())
		h.MaxTime = max(h.MaxTime, e.Time.UnixNano())
		if e.SKU == "" {
			continue
		}
		x := index[e.SKU]
		if x == nil {
			x = &skuEntry{SKU: e.SKU, FirstVersion: e.Version, FirstPos: e.Position}
			index[e.SKU] = x
		}
		x.LastVersion, x.LastPos = e.Version, e.Position
		x.Count++
	}
	entries := make([]*skuEntry, 0, len(index))
	for _, x := range index {
		entries = append(entries, x)
	}
	slices.SortFunc(entries, func(a, b *skuEntry) int { return strings.Compare(a.SKU, b.SKU) })
	raw := binary.AppendUvarint(nil, uint64(len(entries)))
	for _, x := range entries {
		raw = binary.AppendUvarint(raw, uint64(len(x.SKU)))
		raw = append(raw, x.SKU...)
		for _, v := range []uint64{x.FirstVersion, x.LastVersion, x.FirstPos, x.LastPos, x.Count} {
			raw = binary.AppendUvarint(raw, v)
		}
	}
	idx := enc.EncodeAll(raw, nil)
	data := enc.EncodeAll(stockd.AppendEvents(nil, events), nil)
	h.IndexLen, h.DataLen = uint64(len(idx)), uint64(len(data))
	h.IndexCRC, h.DataCRC = crc32.Checksum(idx, castagnoli), crc32.Checksum(data, castagnoli)
	out := make([]byte, 0, headerSize+len(idx)+len(data))
	out = appendHeader(out, h)
	out = append(out, idx...)
	return append(out, data...), h
}

func appendHeader(b []byte, h header) []byte {
	start := len(b)
	b = append(b, magic...)
	b = binary.BigEndian.AppendUint16(b, uint16(h.Partition))
	b = binary.BigEndian.AppendUint64(b, h.First)
	b = binary.BigEndian.AppendUint64(b, h.Last)
	b = binary.BigEndian.AppendUint32(b, h.Count)
	b = binary.BigEndian.AppendUint64(b, uint64(h.MinTime))
	b = binary.BigEndian.AppendUint64(b, uint64(h.MaxTime))
	b = binary.BigEndian.AppendUint64(b, h.IndexLen)
	b = binary.BigEndian.AppendUint64(b, h.DataLen)
	b = binary.BigEndian.AppendUint32(b, h.IndexCRC)
	b = binary.BigEndian.AppendUint32(b, h.DataCRC)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b[start:], castagnoli))
}

// parseHeader decodes and checks the header at the start of b.
func parseHeader(b []byte) (header, error) {
	if len(b) < headerSize {
		return header{}, fmt.Errorf("%w: %d bytes, shorter than a header", ErrCorrupt, len(b))
	}
	if string(b[:len(magic)]) != magic {
		return header{}, fmt.Errorf("%w: bad magic %q", ErrCorrupt, b[:len(magic)])
	}
	if got, want := crc32.Checksum(b[:headerSize-4], castagnoli), binary.BigEndian.Uint32(b[headerSize-4:headerSize]); got != want {
		return header{}, fmt.Errorf("%w: header checksum %08x, want %08x", ErrCorrupt, got, want)
	}
	r := b[len(magic):]
	var h header
	h.Partition = int(binary.BigEndian.Uint16(r[0:]))
	h.First = binary.BigEndian.Uint64(r[2:])
	h.Last = binary.BigEndian.Uint64(r[10:])
	h.Count = binary.BigEndian.Uint32(r[18:])
	h.MinTime = int64(binary.BigEndian.Uint64(r[22:]))
	h.MaxTime = int64(binary.BigEndian.Uint64(r[30:]))
	h.IndexLen = binary.BigEndian.Uint64(r[38:])
	h.DataLen = binary.BigEndian.Uint64(r[46:])
	h.IndexCRC = binary.BigEndian.Uint32(r[54:])
	h.DataCRC = binary.BigEndian.Uint32(r[58:])
	if h.First == 0 || h.Last < h.First || h.Last-h.First+1 != uint64(h.Count) {
		return header{}, fmt.Errorf("%w: positions %d..%d for %d events", ErrCorrupt, h.First, h.Last, h.Count)
	}
	if h.IndexLen > maxSectionSize || h.DataLen > maxSectionSize {
		return header{}, fmt.Errorf("%w: sections of %d and %d bytes", ErrCorrupt, h.IndexLen, h.DataLen)
	}
	return h, nil
}

// size is the length of the whole segment h describes.
func (h header) size() int64 { return int64(headerSize) + int64(h.IndexLen) + int64(h.DataLen) }

// decodeIndex checks and decodes the index section, b (compressed).
func decodeIndex(h header, b []byte) ([]skuEntry, error) {
	if uint64(len(b)) != h.IndexLen {
		return nil, fmt.Errorf("%w: index of %d bytes, want %d", ErrCorrupt, len(b), h.IndexLen)
	}
	if got := crc32.Checksum(b, castagnoli); got != h.IndexCRC {
		return nil, fmt.Errorf("%w: index checksum %08x, want %08x", ErrCorrupt, got, h.IndexCRC)
	}
	_, dec := codecs()
	raw, err := dec.DecodeAll(b, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: index: %v", ErrCorrupt, err)
	}
	r := bytes.NewReader(raw)
	n, err := binary.ReadUvarint(r)
	if err != nil || n > uint64(h.Count) {
		return nil, fmt.Errorf("%w: index of %d SKUs for %d events", ErrCorrupt, n, h.Count)
	}
	out := make([]skuEntry, n)
	for i := range out {
		l, err := binary.ReadUvarint(r)
		if err != nil || l > uint64(r.Len()) {
			return nil, fmt.Errorf("%w: index entry %d", ErrCorrupt, i)
		}
		name := make([]byte, l)
		_, _ = r.Read(name)
		out[i].SKU = string(name)
		for _, v := range []*uint64{&out[i].FirstVersion, &out[i].LastVersion, &out[i].FirstPos, &out[i].LastPos, &out[i].Count} {
			if *v, err = binary.ReadUvarint(r); err != nil {
				return nil, fmt.Errorf("%w: index entry %d", ErrCorrupt, i)
			}
		}
		x := out[i]
		if x.FirstPos < h.First || x.LastPos > h.Last || x.FirstPos > x.LastPos || x.FirstVersion > x.LastVersion {
			return nil, fmt.Errorf("%w: index entry of %q out of the segment's range", ErrCorrupt, x.SKU)
		}
		if i > 0 && out[i-1].SKU >= out[i].SKU {
			return nil, fmt.Errorf("%w: index out of order at %q", ErrCorrupt, out[i].SKU)
		}
	}
	if r.Len() != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the index", ErrCorrupt, r.Len())
	}
	return out, nil
}

// decodeData checks and decodes the events section, b (compressed).
func decodeData(h header, b []byte) ([]stockd.Event, error) {
	if uint64(len(b)) != h.DataLen {
		return nil, fmt.Errorf("%w: data of %d bytes, want %d", ErrCorrupt, len(b), h.DataLen)
	}
	if got := crc32.Checksum(b, castagnoli); got != h.DataCRC {
		return nil, fmt.Errorf("%w: data checksum %08x, want %08x", ErrCorrupt, got, h.DataCRC)
	}
	_, dec := codecs()
	raw, err := dec.DecodeAll(b, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: data: %v", ErrCorrupt, err)
	}
	events, err := stockd.DecodeEvents(raw, h.Partition, h.First)
	if err != nil {
		return nil, fmt.Errorf("%w: data: %v", ErrCorrupt, err)
	}
	if uint64(len(events)) != uint64(h.Count) {
		return nil, fmt.Errorf("%w: %d events, header says %d", ErrCorrupt, len(events), h.Count)
	}
	return events, nil
}

// findSKU returns sku's entry in a sorted index.
func findSKU(index []skuEntry, sku string) (skuEntry, bool) {
	i, ok := slices.BinarySearchFunc(index, sku, func(x skuEntry, s string) int { return strings.Compare(x.SKU, s) })
	if !ok {
		return skuEntry{}, false
	}
	return index[i], true
}
