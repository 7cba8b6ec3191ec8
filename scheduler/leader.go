package scheduler

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/ferryhq/ferry/jobs"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// LeaderConfig configures a Leader.
type LeaderConfig struct {
	Conn *nats.Conn // required
	// Bucket is the KV bucket holding locks (default jobs.KVLocks). Its TTL
	// is set to TTL: a lock nobody renews disappears on its own.
	Bucket string
	// Key names the lock (default "reconciler").
	Key string
	// ID identifies this candidate in the lock's value (default
	// hostname-pid-random). Only for people reading the bucket.
	ID string
	// TTL is how long a lock outlives its holder's last renewal (default
	// 15 s). The holder renews every TTL/3 and steps down as soon as a
	// renewal fails, so it stops acting before anyone else can start.
	TTL time.Duration
	// Replicas is the JetStream replica count of the bucket (default 1).
	Replicas int
	Logger   zerolog.Logger
}

// Validate reports every problem with the configuration.
func (c *LeaderConfig) Validate() error {
	var errs []error
	if c.Conn == nil {
		errs = append(errs, errors.New("nats connection is required"))
	}
	if c.TTL < 0 {
		errs = append(errs, errors.New("lock ttl must not be negative"))
	} else if c.TTL > 0 && c.TTL < 300*time.Millisecond {
		errs = append(errs, fmt.Errorf("lock ttl %s: must be at least 300ms", c.TTL))
	}
	if c.Replicas < 0 {
		errs = append(errs, errors.New("replicas must not be negative"))
	}
	return errors.Join(errs...)
}

func (c *LeaderConfig) setDefaults() {
	if c.Bucket == "" {
		c.Bucket = jobs.KVLocks
	}
	if c.Key == "" {
		c.Key = "reconciler"
	}
	if c.TTL == 0 {
		c.TTL = 15 * time.Second
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.ID == "" {
		host, _ := os.Hostname()
		var b [4]byte
		_, _ = rand.Read(b[:])
		c.ID = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
	}
}

// Leader is one candidate in an election over a JetStream KV lock: at most
// one candidate per lock key runs its function at a time. The lock is a key
// created with kv.Create (which fails while someone holds it) and renewed by
// kv.Update at the revision the holder last wrote; the bucket's TTL removes
// a lock whose holder died.
//
//	follower --Create ok--> leader --Update ok every TTL/3--> leader
//	   ^                       |
//	   +--- any failure, fn returned, or ctx done (lock released) ---+
type Leader struct {
	cfg     LeaderConfig
	log     zerolog.Logger
	leading atomic.Bool
}

// NewLeader checks the configuration and returns a candidate.
func NewLeader(cfg LeaderConfig) (*Leader, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("leader: %w", err)
	}
	cfg.setDefaults()
	return &Leader{cfg: cfg, log: cfg.Logger.With().Str("lock", cfg.Key).Str("candidate", cfg.ID).Logger()}, nil
}

// IsLeader reports whether this candidate holds the lock right now.
func (l *Leader) IsLeader() bool { return l.leading.Load() }

// Run campaigns until ctx ends. While this candidate holds the lock it runs
// fn with a context that is cancelled as soon as leadership is lost; it then
// waits for fn to return and campaigns again. When fn returns an error by
// itself (not because its context ended) Run releases the lock and returns
// that error. When ctx ends Run releases the lock, so another candidate
// takes over at once, and returns nil.
func (l *Leader) Run(ctx context.Context, fn func(leaderCtx context.Context) error) error {
	kv, err := l.bucket(ctx)
	if err != nil {
		return err
	}
	retry := l.cfg.TTL / 3
	// A released lock is announced: followers campaign at once instead of
	// at their next retry. (An expired one is not: the retry covers it.)
	var released <-chan jetstream.KeyValueEntry
	if w, err := kv.Watch(ctx, l.cfg.Key, jetstream.UpdatesOnly(), jetstream.MetaOnly()); err == nil {
		defer func() { _ = w.Stop() }()
		released = w.Updates()
	}
	for {
		rev, err := l.campaign(ctx, kv)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if !errors.Is(err, jetstream.ErrKeyExists) {
				l.log.Warn().Err(err).Msg("campaign failed; retrying")
			}
			l.waitForRelease(ctx, released, retry)
			continue
		}
		if err := l.lead(ctx, kv, rev, fn); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// bucket opens (or creates) the lock bucket, retrying until ctx ends.
func (l *Leader) bucket(ctx context.Context) (jetstream.KeyValue, error) {
	js, err := jetstream.New(l.cfg.Conn)
	if err != nil {
		return nil, fmt.Errorf("leader: jetstream: %w", err)
	}
	delay := 250 * time.Millisecond
	for {
		octx, cancel := context.WithTimeout(ctx, 10*time.Second)
		kv, err := js.CreateOrUpdateKeyValue(octx, jetstream.KeyValueConfig{
			Bucket:      l.cfg.Bucket,
			Description: "Ferry leader locks",
			TTL:         l.cfg.TTL,
			History:     1,
			Storage:     jetstream.FileStorage,
			Replicas:    l.cfg.Replicas,
		})
		cancel()
		if err == nil {
			return kv, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		l.log.Warn().Err(err).Str("bucket", l.cfg.Bucket).Msg("lock bucket not reachable yet; retrying")
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(delay):
		}
		if delay < 5*time.Second {
			delay *= 2
		}
	}
}

// waitForRelease returns when the lock is deleted, after retry, or when
// ctx ends.
func (l *Leader) waitForRelease(ctx context.Context, released <-chan jetstream.KeyValueEntry, retry time.Duration) {
	timer := time.NewTimer(retry)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
			return
		case e, ok := <-released:
			if !ok {
				released = nil // the watch ended: rely on the timer
				continue
			}
			if e != nil && (e.Operation() == jetstream.KeyValueDelete || e.Operation() == jetstream.KeyValuePurge) {
				return
			}
		}
	}
}

// campaign tries once to take the lock and returns its revision.
func (l *Leader) campaign(ctx context.Context, kv jetstream.KeyValue) (uint64, error) {
	cctx, cancel := context.WithTimeout(ctx, l.cfg.TTL/3)
	defer cancel()
	rev, err := kv.Create(cctx, l.cfg.Key, []byte(l.cfg.ID))
	if err != nil {
		return 0, fmt.Errorf("take lock %q: %w", l.cfg.Key, err)
	}
	return rev, nil
}

// lead runs fn while renewals succeed. It returns fn's own error, or nil
// when leadership ended (lost, or ctx done).
func (l *Leader) lead(ctx context.Context, kv jetstream.KeyValue, rev uint64, fn func(context.Context) error) error {
	l.leading.Store(true)
	defer l.leading.Store(false)
	l.log.Info().Msg("leadership acquired")

	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- fn(lctx) }()

	every := l.cfg.TTL / 3
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			// fn ended by itself (or with ctx): give the lock up at once.
			l.release(kv, rev)
			if ctx.Err() != nil {
				l.log.Info().Msg("leadership released")
				return nil
			}
			l.log.Info().Msg("leadership released: the leader's work ended")
			if err == nil {
				return nil
			}
			return fmt.Errorf("leader %q: %w", l.cfg.Key, err)
		case <-ctx.Done():
			l.leading.Store(false)
			cancel()
			<-done
			l.release(kv, rev)
			l.log.Info().Msg("leadership released")
			return nil
		case <-tick.C:
			// Bounded, so a NATS that stopped answering makes us step down
			// well before the lock can expire and be taken by another.
			uctx, ucancel := context.WithTimeout(ctx, every)
			next, err := kv.Update(uctx, l.cfg.Key, []byte(l.cfg.ID), rev)
			ucancel()
			if err != nil {
				if ctx.Err() != nil {
					continue // the ctx.Done branch releases
				}
				l.log.Warn().Err(err).Msg("leadership lost: lock renewal failed; stepping down")
				l.leading.Store(false)
				cancel()
				<-done
				// The lock may still be ours (a timeout, not a mismatch):
				// release it so nobody waits for the TTL in vain.
				l.release(kv, rev)
				return nil
			}
			rev = next
		}
	}
}

// release deletes the lock if it is still at rev (still ours).
func (l *Leader) release(kv jetstream.KeyValue, rev uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := kv.Delete(ctx, l.cfg.Key, jetstream.LastRevision(rev)); err != nil {
		l.log.Debug().Err(err).Msg("lock not released (it expires on its own)")
	}
}
