package main

import (
	"io"
	"log/slog"
	"slices"
	"testing"

	"github.com/stockd/stockd/app"
)

func TestPublisherFlagsAndVariablesReachTheAppConfig(t *testing.T) {
	t.Setenv("STOCKD_NATS", "nats://n1:4222,nats://n2:4222")
	fs, c := serveFlags(io.Discard)
	if err := parseFlags(fs, []string{"--kafka", "k1:9092, k2:9092", "--kafka-topic", "shop.stock"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := c.appConfig(slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	want := app.PublishConfig{NATS: "nats://n1:4222,nats://n2:4222", NATSStream: "STOCKD", Kafka: []string{"k1:9092", "k2:9092"}, KafkaTopic: "shop.stock"}
	got := cfg.Publish
	if got.NATS != want.NATS || got.NATSStream != want.NATSStream || !slices.Equal(got.Kafka, want.Kafka) || got.KafkaTopic != want.KafkaTopic {
		t.Fatalf("publish config %+v, want %+v", got, want)
	}

	fs, c = serveFlags(io.Discard)
	t.Setenv("STOCKD_NATS", "")
	if err := parseFlags(fs, nil); err != nil {
		t.Fatal(err)
	}
	if cfg, _ := c.appConfig(slog.New(slog.DiscardHandler)); cfg.Publish.NATS != "" || cfg.Publish.Kafka != nil {
		t.Fatalf("publishers configured by default: %+v", cfg.Publish)
	}
}
