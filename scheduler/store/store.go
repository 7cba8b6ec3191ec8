// Package store keeps Ferry's control-plane state in NATS JetStream KV:
// connectors (desired state), their observed status, custom plugins, worker
// configurations, connector operations and tags. Every record is JSON; the KV
// revision of a record is its version for optimistic locking.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/ferryhq/ferry/jobs"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Errors callers classify with errors.Is.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
	// ErrConflict means the record changed since the revision the caller read.
	ErrConflict = errors.New("revision conflict")
)

// Options configures the buckets.
type Options struct {
	// Replicas is the JetStream replication factor of every bucket (1 for a
	// single server; 3 for a NATS cluster).
	Replicas int
}

// Store is the control-plane state. It is safe for concurrent use.
type Store struct {
	Connectors    *Bucket[jobs.Connector]
	Status        *Bucket[jobs.ConnectorStatus]
	Plugins       *Bucket[Plugin]
	WorkerConfigs *Bucket[WorkerConfiguration]
	Operations    *Bucket[Operation]
	Tags          *Bucket[map[string]string]
}

// OpenConn opens the store over a NATS connection.
func OpenConn(ctx context.Context, nc *nats.Conn, o Options) (*Store, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	return Open(ctx, js, o)
}

// Open creates (or opens) every bucket.
func Open(ctx context.Context, js jetstream.JetStream, o Options) (*Store, error) {
	if o.Replicas < 1 {
		o.Replicas = 1
	}
	s := &Store{}
	var err error
	if s.Connectors, err = openBucket[jobs.Connector](ctx, js, jobs.KVConnectors, o); err != nil {
		return nil, err
	}
	if s.Status, err = openBucket[jobs.ConnectorStatus](ctx, js, jobs.KVConnectorStatus, o); err != nil {
		return nil, err
	}
	if s.Plugins, err = openBucket[Plugin](ctx, js, jobs.KVPlugins, o); err != nil {
		return nil, err
	}
	if s.WorkerConfigs, err = openBucket[WorkerConfiguration](ctx, js, jobs.KVWorkerConfigurations, o); err != nil {
		return nil, err
	}
	if s.Operations, err = openBucket[Operation](ctx, js, jobs.KVOperations, o); err != nil {
		return nil, err
	}
	if s.Tags, err = openBucket[map[string]string](ctx, js, jobs.KVTags, o); err != nil {
		return nil, err
	}
	return s, nil
}

// Entry is a record with its revision.
type Entry[T any] struct {
	Key      string
	Value    T
	Revision uint64
}

// Bucket is one KV bucket of JSON records of type T.
type Bucket[T any] struct {
	kv   jetstream.KeyValue
	name string
}

func openBucket[T any](ctx context.Context, js jetstream.JetStream, name string, o Options) (*Bucket[T], error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:   name,
		History:  1,
		Storage:  jetstream.FileStorage,
		Replicas: o.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("open kv bucket %s: %w", name, err)
	}
	return &Bucket[T]{kv: kv, name: name}, nil
}

// Get returns the record under key, or ErrNotFound.
func (b *Bucket[T]) Get(ctx context.Context, key string) (Entry[T], error) {
	e, err := b.kv.Get(ctx, key)
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
			return Entry[T]{}, fmt.Errorf("%s %q: %w", b.name, key, ErrNotFound)
		}
		return Entry[T]{}, fmt.Errorf("get %s %q: %w", b.name, key, err)
	}
	var v T
	if err := json.Unmarshal(e.Value(), &v); err != nil {
		return Entry[T]{}, fmt.Errorf("decode %s %q: %w", b.name, key, err)
	}
	return Entry[T]{Key: key, Value: v, Revision: e.Revision()}, nil
}

// Create stores a new record; ErrExists if the key holds one.
func (b *Bucket[T]) Create(ctx context.Context, key string, v T) (uint64, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return 0, fmt.Errorf("encode %s %q: %w", b.name, key, err)
	}
	rev, err := b.kv.Create(ctx, key, data)
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return 0, fmt.Errorf("%s %q: %w", b.name, key, ErrExists)
		}
		return 0, fmt.Errorf("create %s %q: %w", b.name, key, err)
	}
	return rev, nil
}

// Update replaces the record if it is still at revision rev; ErrConflict if not.
func (b *Bucket[T]) Update(ctx context.Context, key string, v T, rev uint64) (uint64, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return 0, fmt.Errorf("encode %s %q: %w", b.name, key, err)
	}
	n, err := b.kv.Update(ctx, key, data, rev)
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return 0, fmt.Errorf("%s %q at revision %d: %w", b.name, key, rev, ErrConflict)
		}
		return 0, fmt.Errorf("update %s %q: %w", b.name, key, err)
	}
	return n, nil
}

// Put stores the record whatever is there.
func (b *Bucket[T]) Put(ctx context.Context, key string, v T) (uint64, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return 0, fmt.Errorf("encode %s %q: %w", b.name, key, err)
	}
	n, err := b.kv.Put(ctx, key, data)
	if err != nil {
		return 0, fmt.Errorf("put %s %q: %w", b.name, key, err)
	}
	return n, nil
}

// Modify reads the record, applies fn and writes it back, retrying on
// concurrent changes. fn may return an error to abort without writing.
// With create set, a missing record starts from T's zero value.
func (b *Bucket[T]) Modify(ctx context.Context, key string, create bool, fn func(*T) error) (Entry[T], error) {
	for attempt := 0; ; attempt++ {
		e, err := b.Get(ctx, key)
		missing := errors.Is(err, ErrNotFound)
		if err != nil && !(missing && create) {
			return Entry[T]{}, err
		}
		if err := fn(&e.Value); err != nil {
			return Entry[T]{}, err
		}
		var rev uint64
		if missing {
			rev, err = b.Create(ctx, key, e.Value)
		} else {
			rev, err = b.Update(ctx, key, e.Value, e.Revision)
		}
		if err == nil {
			e.Key, e.Revision = key, rev
			return e, nil
		}
		if !(errors.Is(err, ErrConflict) || errors.Is(err, ErrExists)) || attempt >= 20 {
			return Entry[T]{}, err
		}
		select {
		case <-ctx.Done():
			return Entry[T]{}, ctx.Err()
		case <-time.After(time.Duration(attempt+1) * 5 * time.Millisecond):
		}
	}
}

// Delete removes the record. With rev > 0 only if it is still at rev.
func (b *Bucket[T]) Delete(ctx context.Context, key string, rev uint64) error {
	var opts []jetstream.KVDeleteOpt
	if rev > 0 {
		opts = append(opts, jetstream.LastRevision(rev))
	}
	if err := b.kv.Delete(ctx, key, opts...); err != nil {
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return fmt.Errorf("%s %q at revision %d: %w", b.name, key, rev, ErrConflict)
		}
		return fmt.Errorf("delete %s %q: %w", b.name, key, err)
	}
	return nil
}

// List returns every record whose key starts with prefix, sorted by key.
func (b *Bucket[T]) List(ctx context.Context, prefix string) ([]Entry[T], error) {
	lister, err := b.kv.ListKeys(ctx)
	if err != nil {
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			return nil, nil
		}
		return nil, fmt.Errorf("list %s: %w", b.name, err)
	}
	var keys []string
	for k := range lister.Keys() {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	out := make([]Entry[T], 0, len(keys))
	for _, k := range keys {
		e, err := b.Get(ctx, k)
		if errors.Is(err, ErrNotFound) {
			continue // deleted between listing and reading
		}
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// Watch sends on the returned channel (without blocking, coalescing) every
// time a record changes, until ctx ends. The first signal comes once the
// current values have been delivered, so a watcher starting late still
// converges.
func (b *Bucket[T]) Watch(ctx context.Context) (<-chan struct{}, error) {
	w, err := b.kv.WatchAll(ctx, jetstream.MetaOnly())
	if err != nil {
		return nil, fmt.Errorf("watch %s: %w", b.name, err)
	}
	ch := make(chan struct{}, 1)
	go func() {
		defer w.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case _, ok := <-w.Updates():
				if !ok {
					return
				}
				select {
				case ch <- struct{}{}:
				default:
				}
			}
		}
	}()
	return ch, nil
}
