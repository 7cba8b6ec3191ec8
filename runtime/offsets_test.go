package runtime

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// An offsets topic written in a transaction ends with its commit marker,
// a control record no consumer sees: reading the offsets stops at the end
// all the same, instead of waiting for a record at end-1 until it times
// out (and the task restart-loops).
func TestReadOffsetsPastATransactionMarker(t *testing.T) {
	addr := newCluster(t, 1, "connect-offsets-tx")
	tx := newClient(t, addr, kgo.TransactionalID("offsets-writer"), manualPartitioner())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := tx.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for _, r := range []*kgo.Record{
		{Topic: "connect-offsets-tx", Key: []byte(`["tx",{"p":0}]`), Value: []byte(`{"o":5}`)},
		{Topic: "connect-offsets-tx", Key: []byte(`["tx",{"p":1}]`), Value: []byte(`{"o":9}`)},
		{Topic: "connect-offsets-tx", Key: []byte(`["other",{"p":0}]`), Value: []byte(`{"o":1}`)},
	} {
		if err := tx.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	rctx, rcancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer rcancel()
	store, err := readOffsets(rctx, []string{addr}, nil, "connect-offsets-tx", "tx")
	if err != nil {
		t.Fatalf("read offsets: %v (after %v)", err, time.Since(start))
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("reading took %v", d)
	}
	if len(store.offsets) != 2 || store.Offset(map[string]any{"p": 1})["o"] == nil {
		t.Errorf("offsets %v, want the connector's two", store.offsets)
	}
}

// The offsets topic: the connector's offsets.storage.topic (Kafka
// Connect's KIP-618 key) wins over offset.storage.topic from the connector
// or the worker, which wins over the default.
func TestOffsetsTopicKeys(t *testing.T) {
	for _, tc := range []struct {
		name      string
		connector map[string]string
		worker    map[string]string
		want      string
	}{
		{"default", nil, nil, "connect-offsets-ot"},
		{"worker property", nil, map[string]string{"offset.storage.topic": "w-offsets"}, "w-offsets"},
		{"connector, singular (Ferry's first key)", map[string]string{"offset.storage.topic": "c1"}, map[string]string{"offset.storage.topic": "w-offsets"}, "c1"},
		{"connector, KIP-618 key", map[string]string{"offsets.storage.topic": "c2"}, map[string]string{"offset.storage.topic": "w-offsets"}, "c2"},
		{"KIP-618 key wins", map[string]string{"offsets.storage.topic": "c2", "offset.storage.topic": "c1"}, nil, "c2"},
	} {
		spec := datagenSpec("ot", "127.0.0.1:1", 1, tc.connector)
		spec.WorkerProperties = tc.worker
		s, err := parseSourceSettings(spec)
		if err != nil {
			t.Fatal(err)
		}
		if s.offsetsTopic != tc.want {
			t.Errorf("%s: offsets topic %q, want %q", tc.name, s.offsetsTopic, tc.want)
		}
	}
}
