package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
)

// Bucket is the blob store segments live in, opened from a URL.
type Bucket struct {
	b   *blob.Bucket
	url string
	// dir, for a file:// bucket, is the folder objects are files in, so
	// that a written segment can be fsynced: gocloud's fileblob renames a
	// finished file into place but does not sync it.
	dir string
}

// OpenBucket opens the blob store named by rawURL: file:///path, s3://bucket,
// gs://bucket, azblob://container, or mem:// (in memory, for tests); any
// query parameters of the gocloud.dev driver apply. For file:// the folder is
// created if missing, temporary files are made next to the objects (so the
// final rename never crosses file systems) and no metadata sidecar files are
// written, unless the URL says otherwise.
func OpenBucket(ctx context.Context, rawURL string) (*Bucket, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("archive: bucket URL %q: %v", rawURL, err)
	}
	var dir string
	if u.Scheme == "file" {
		q := u.Query()
		for k, v := range map[string]string{"create_dir": "1", "no_tmp_dir": "1", "metadata": "skip"} {
			if !q.Has(k) {
				q.Set(k, v)
			}
		}
		u.RawQuery = q.Encode()
		dir = filepath.FromSlash(u.Path)
		if prefix := q.Get("prefix"); prefix != "" {
			dir = filepath.Join(dir, filepath.FromSlash(prefix))
		}
	}
	b, err := blob.OpenBucket(ctx, u.String())
	if err != nil {
		return nil, fmt.Errorf("archive: open bucket %s: %w", rawURL, err)
	}
	return &Bucket{b: b, url: rawURL, dir: dir}, nil
}

// URL returns the URL the bucket was opened with.
func (b *Bucket) URL() string { return b.url }

// Close releases the bucket.
func (b *Bucket) Close() error { return b.b.Close() }

// put writes an object, replacing any of that name, and returns once it is
// durable.
func (b *Bucket) put(ctx context.Context, key string, data []byte) error {
	if err := b.b.WriteAll(ctx, key, data, &blob.WriterOptions{ContentType: "application/octet-stream"}); err != nil {
		return fmt.Errorf("archive: write %s: %w", key, err)
	}
	if b.dir == "" {
		return nil // an object store has the object durably once the write returns
	}
	path := filepath.Join(b.dir, filepath.FromSlash(key))
	for _, name := range []string{path, filepath.Dir(path)} {
		if err := syncPath(name); err != nil {
			return fmt.Errorf("archive: sync %s: %w", key, err)
		}
	}
	return nil
}

func syncPath(name string) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// get reads length bytes of an object from offset; a negative length reads to
// the end.
func (b *Bucket) get(ctx context.Context, key string, offset, length int64) ([]byte, error) {
	r, err := b.b.NewRangeReader(ctx, key, offset, length, nil)
	if err != nil {
		if gcerrors.Code(err) == gcerrors.NotFound {
			return nil, fmt.Errorf("archive: segment %s is missing: %w", key, errMissing)
		}
		return nil, fmt.Errorf("archive: read %s: %w", key, err)
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("archive: read %s: %w", key, err)
	}
	return data, nil
}

// errMissing is wrapped by the error of a read of a segment that is not there.
var errMissing = errors.New("not found")

// list returns the first positions of partition p's segments, in order, and
// the names of objects under its prefix that are not segments.
func (b *Bucket) list(ctx context.Context, p int) (firsts []uint64, strays []string, err error) {
	it := b.b.List(&blob.ListOptions{Prefix: partitionPrefix(p)})
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("archive: list partition %d: %w", p, err)
		}
		q, first, ok := parseKey(obj.Key)
		if !ok || q != p {
			strays = append(strays, obj.Key)
			continue
		}
		firsts = append(firsts, first)
	}
	slices.Sort(firsts)
	return firsts, strays, nil
}

// listAll returns the names of all objects in the bucket.
func (b *Bucket) listAll(ctx context.Context) ([]string, error) {
	var keys []string
	it := b.b.List(nil)
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			return keys, nil
		}
		if err != nil {
			return nil, fmt.Errorf("archive: list: %w", err)
		}
		keys = append(keys, obj.Key)
	}
}
