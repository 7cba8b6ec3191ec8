package plugins

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ferryhq/ferry/jobs"
	"github.com/ferryhq/ferry/scheduler/store"
	"github.com/rs/zerolog"
)

// Custom plugin states, as MSK Connect names them.
const (
	StateCreating     = "CREATING"
	StateCreateFailed = "CREATE_FAILED"
	StateActive       = "ACTIVE"
	StateDeleting     = "DELETING"
)

// MaxFileSize is the largest plugin file Ferry accepts (1 GiB).
const MaxFileSize = 1 << 30

// Source opens plugin files where the API says they are (S3 opens them in
// S3). Permanent refusals are *Problem.
type Source interface {
	Open(ctx context.Context, loc store.Location) (io.ReadCloser, int64, error)
}

// CheckerConfig configures a Checker.
type CheckerConfig struct {
	Store  *store.Store // required
	Source Source       // required
	Logger zerolog.Logger
	// TempDir holds each file while it is checked (default os.TempDir()).
	TempDir string
	// Interval is how often CREATING plugins are looked at besides every
	// change of the plugins bucket (default 5 s).
	Interval time.Duration
	// GiveUpAfter is how long after its creation a plugin whose file cannot
	// be read for a passing reason (S3 unreachable, 5xx) is retried before
	// it fails (default 5 min).
	GiveUpAfter time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Validate reports every problem with the configuration.
func (c *CheckerConfig) Validate() error {
	var errs []error
	if c.Store == nil {
		errs = append(errs, errors.New("store is required"))
	}
	if c.Source == nil {
		errs = append(errs, errors.New("source is required"))
	}
	if c.Interval < 0 || c.GiveUpAfter < 0 {
		errs = append(errs, errors.New("durations must not be negative"))
	}
	return errors.Join(errs...)
}

// Checker moves custom plugins out of CREATING: it downloads each one's
// file, checks it (Inspect) and records the plugin ACTIVE, with its MD5,
// size, binary and connector classes, or CREATE_FAILED with what is wrong.
// It is level-based: it looks at every CREATING plugin on each pass, so a
// plugin created while no checker ran (a restart, a new leader) is checked
// by the next one.
type Checker struct {
	cfg   CheckerConfig
	log   zerolog.Logger
	retry map[string]time.Time // plugin ARN → next attempt after a passing failure; owned by Run
}

// NewChecker checks cfg and returns a Checker.
func NewChecker(cfg CheckerConfig) (*Checker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("plugin checker config: %w", err)
	}
	if cfg.Interval == 0 {
		cfg.Interval = 5 * time.Second
	}
	if cfg.GiveUpAfter == 0 {
		cfg.GiveUpAfter = 5 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Checker{cfg: cfg, log: cfg.Logger.With().Str("component", "plugin-checker").Logger(), retry: map[string]time.Time{}}, nil
}

// Run checks CREATING plugins on every change of the plugins bucket and
// every Interval until ctx ends.
func (c *Checker) Run(ctx context.Context) error {
	changes, err := c.cfg.Store.Plugins.Watch(ctx)
	if err != nil {
		return fmt.Errorf("watch custom plugins: %w", err)
	}
	t := time.NewTicker(c.cfg.Interval)
	defer t.Stop()
	for {
		if err := c.CheckPending(ctx); err != nil && ctx.Err() == nil {
			c.log.Warn().Err(err).Msg("checking custom plugins failed; retrying")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-changes:
		}
	}
}

// CheckPending checks every CREATING plugin once (those backing off after a
// passing failure only when due). Only a failure to list is returned.
func (c *Checker) CheckPending(ctx context.Context) error {
	entries, err := c.cfg.Store.Plugins.List(ctx, "")
	if err != nil {
		return fmt.Errorf("list custom plugins: %w", err)
	}
	now := c.cfg.Now()
	for _, e := range entries {
		p := e.Value
		if p.State != StateCreating || p.Builtin {
			continue
		}
		if next, ok := c.retry[p.Arn]; ok && now.Before(next) {
			continue
		}
		c.check(ctx, e.Key, p)
		if ctx.Err() != nil {
			return nil
		}
	}
	return nil
}

// check downloads and inspects one plugin's file and records the outcome.
func (c *Checker) check(ctx context.Context, key string, p store.Plugin) {
	log := c.log.With().Str("plugin", p.Name).Str("arn", p.Arn).Logger()
	start := c.cfg.Now()
	res, err := c.inspect(ctx, p.Location)
	var pr *Problem
	switch {
	case ctx.Err() != nil:
		return
	case errors.As(err, &pr):
		c.record(ctx, key, p, func(q *store.Plugin) {
			q.State = StateCreateFailed
			q.StateDescription = &jobs.StateDescription{Code: pr.Code, Message: pr.Message}
		})
		log.Warn().Str("code", pr.Code).Str("reason", pr.Message).Msg("custom plugin refused")
	case err != nil:
		if start.Sub(p.CreationTime) < c.cfg.GiveUpAfter {
			c.retry[p.Arn] = start.Add(min(c.cfg.Interval*4, time.Minute))
			log.Warn().Err(err).Msg("custom plugin file not readable yet; retrying")
			return
		}
		c.record(ctx, key, p, func(q *store.Plugin) {
			q.State = StateCreateFailed
			q.StateDescription = &jobs.StateDescription{Code: CodeUnreadable,
				Message: fmt.Sprintf("the file could not be read within %s of the plugin's creation: %v", c.cfg.GiveUpAfter, err)}
		})
		log.Warn().Err(err).Msg("custom plugin file unreadable; giving up")
	default:
		c.record(ctx, key, p, func(q *store.Plugin) {
			q.State = StateActive
			q.StateDescription = nil
			q.FileMd5, q.FileSize = res.md5, res.size
			q.Binary = res.manifest.Binary
			q.Connectors = res.manifest.StoreConnectors()
		})
		classes := make([]string, 0, len(res.manifest.Connectors))
		for _, mc := range res.manifest.Connectors {
			classes = append(classes, mc.Class)
		}
		log.Info().Str("md5", res.md5).Int64("size", res.size).Str("binary", res.manifest.Binary).
			Strs("classes", classes).Dur("took", c.cfg.Now().Sub(start)).Msg("custom plugin active")
	}
	delete(c.retry, p.Arn)
}

// record writes the outcome of a check, unless the plugin changed meanwhile
// (deleted, or deleted and created again under the same name).
func (c *Checker) record(ctx context.Context, key string, p store.Plugin, set func(*store.Plugin)) {
	_, err := c.cfg.Store.Plugins.Modify(ctx, key, false, func(q *store.Plugin) error {
		if q.Arn != p.Arn || q.State != StateCreating {
			return errGone
		}
		set(q)
		return nil
	})
	if err != nil && !errors.Is(err, errGone) && !errors.Is(err, store.ErrNotFound) && ctx.Err() == nil {
		c.log.Warn().Err(err).Str("plugin", p.Name).Msg("cannot record the custom plugin's check; retrying")
		c.retry[p.Arn] = c.cfg.Now().Add(c.cfg.Interval)
	}
}

var errGone = errors.New("plugin changed while it was checked")

type inspected struct {
	md5      string
	size     int64
	manifest Manifest
}

// inspect downloads the file into a temporary file, hashing it, and checks it.
func (c *Checker) inspect(ctx context.Context, loc store.Location) (inspected, error) {
	body, _, err := c.cfg.Source.Open(ctx, loc)
	if err != nil {
		return inspected{}, err
	}
	defer body.Close()
	f, err := os.CreateTemp(c.cfg.TempDir, "ferry-plugin-*.zip")
	if err != nil {
		return inspected{}, fmt.Errorf("temporary file for the plugin: %w", err)
	}
	defer func() { f.Close(); os.Remove(f.Name()) }()
	sum, n, err := copyHashed(f, body, MaxFileSize)
	if errors.Is(err, errTooLarge) {
		return inspected{}, problem(CodeTooLarge, "the file is larger than %d bytes, the most Ferry accepts", int64(MaxFileSize))
	}
	if err != nil {
		return inspected{}, fmt.Errorf("download the plugin file: %w", err)
	}
	m, err := Inspect(f, n)
	if err != nil {
		return inspected{}, err
	}
	return inspected{md5: sum, size: n, manifest: m}, nil
}

// copyHashed copies at most limit bytes of r to w and returns their hex
// MD5 and count; more than limit is errTooLarge.
func copyHashed(w io.Writer, r io.Reader, limit int64) (string, int64, error) {
	h := md5.New()
	n, err := io.Copy(io.MultiWriter(w, h), io.LimitReader(r, limit+1))
	if err != nil {
		return "", n, err
	}
	if n > limit {
		return "", n, errTooLarge
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// FilesPrefix is the path under which the Ferry API serves checked plugin
// files to deployers (Nomad's artifact block, the local executor).
const FilesPrefix = "/ferry/plugin-files/"

// FilePath is the path of one plugin revision's file:
// /ferry/plugin-files/<name>/<ARN id>/<revision>.zip. The ".zip" tells
// Nomad's artifact fetcher to unpack it; the id makes a plugin created
// again under the same name another file.
func FilePath(name, id string, revision int64) string {
	return FilesPrefix + name + "/" + id + "/" + strconv.FormatInt(revision, 10) + ".zip"
}

// ParseFilePath reverses FilePath.
func ParseFilePath(p string) (name, id string, revision int64, ok bool) {
	rest, ok := strings.CutPrefix(p, FilesPrefix)
	if !ok {
		return "", "", 0, false
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" {
		return "", "", 0, false
	}
	rev, found := strings.CutSuffix(parts[2], ".zip")
	if !found {
		return "", "", 0, false
	}
	revision, err := strconv.ParseInt(rev, 10, 64)
	if err != nil || revision < 1 {
		return "", "", 0, false
	}
	return parts[0], parts[1], revision, true
}
