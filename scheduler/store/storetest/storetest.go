// Package storetest starts a real in-process NATS server with JetStream for
// tests and opens a Store on it.
package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/ferryhq/ferry/scheduler/store"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// NATS starts nats-server with JetStream on a random loopback port, storing
// under dir (t.TempDir() when empty), and returns it with a connection. Both
// are closed in t.Cleanup.
func NATS(t testing.TB, dir string) (*server.Server, *nats.Conn) {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	s, err := server.NewServer(&server.Options{
		Host:      "127.0.0.1",
		Port:      -1,
		JetStream: true,
		StoreDir:  dir,
		NoSigs:    true,
		NoLog:     true,
	})
	if err != nil {
		t.Fatalf("nats server: %v", err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		s.Shutdown()
		t.Fatalf("nats connect: %v", err)
	}
	t.Cleanup(func() {
		nc.Close()
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s, nc
}

// Open starts NATS (see NATS) and opens a Store on it.
func Open(t testing.TB) (*store.Store, *nats.Conn) {
	t.Helper()
	_, nc := NATS(t, "")
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := store.Open(ctx, js, store.Options{})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	return st, nc
}
