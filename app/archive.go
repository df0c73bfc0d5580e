package app

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/archive"
	"github.com/stockd/stockd/publish"
	"github.com/stockd/stockd/readmodel"
)

// DefaultArchiveURL returns the blob store an App archives to when
// Config.ArchiveURL is empty: the folder "archive" in the data directory.
func DefaultArchiveURL(data string) (string, error) {
	dir, err := filepath.Abs(filepath.Join(data, "archive"))
	if err != nil {
		return "", err
	}
	return (&url.URL{Scheme: "file", Path: filepath.ToSlash(dir)}).String(), nil
}

// archiveURL is the blob store of this App: Config.ArchiveURL, or an
// in-memory one for an App on an in-memory file system, or the default.
func (a *App) archiveURL() (string, error) {
	switch {
	case a.cfg.ArchiveURL != "":
		return a.cfg.ArchiveURL, nil
	case a.cfg.FS != nil:
		return "mem://", nil
	}
	return DefaultArchiveURL(a.cfg.Data)
}

// openArchive opens cold storage when it is on (ArchiveAfter > 0) or when
// the store was archived before, and returns the store the engine and the
// read model must use: one whose reads fall through to the archive, so that
// history, as_of and consumers see archived ranges. The archiver itself is
// started by startArchive, once the read model runs.
func (a *App) openArchive(ctx context.Context, store Store) (stockd.Store, error) {
	trimmed := false
	for p := range store.Partitions() {
		if start, _ := store.LogStart(ctx, p); start > 0 {
			trimmed = true
			break
		}
	}
	if a.cfg.ArchiveAfter <= 0 && !trimmed {
		return store, nil
	}
	u, err := a.archiveURL()
	if err != nil {
		return nil, err
	}
	b, err := archive.OpenBucket(ctx, u)
	if err != nil {
		return nil, err
	}
	a.archiveBucket = b
	a.ArchiveLog = archive.NewLog(store, b, archive.LogOptions{})
	return archive.Wrap(store, a.ArchiveLog), nil
}

// startArchive starts the archiver, when ArchiveAfter is positive. It waits
// for the read model's checkpoints, even in partitions where it has saved
// none yet.
func (a *App) startArchive() error {
	if a.cfg.ArchiveAfter <= 0 {
		return nil
	}
	var consumers []string
	if a.ReadModel != nil {
		consumers = append(consumers, readmodel.DefaultName)
	}
	for _, name := range a.cfg.Publish.publisherNames() {
		consumers = append(consumers, publish.Consumer(name))
	}
	m := archive.NewMetrics()
	if err := a.Metrics.Register(m); err != nil {
		return err
	}
	arc, err := archive.New(a.Store, a.archiveBucket, archive.Options{
		After:     a.cfg.ArchiveAfter,
		Every:     a.cfg.ArchiveEvery,
		Consumers: consumers,
		Log:       a.ArchiveLog,
		Metrics:   m,
		Logger:    a.log,
	})
	if err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	a.Archiver = arc
	arc.Start()
	return nil
}

// closeArchive stops the archiver and closes the bucket; the store is
// closed after.
func (a *App) closeArchive() error {
	if a.Archiver != nil {
		a.Archiver.Close()
	}
	if a.archiveBucket != nil {
		return a.archiveBucket.Close()
	}
	return nil
}
