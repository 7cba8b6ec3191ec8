package devstack

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3bolt"
	"github.com/rs/zerolog"
	bolt "go.etcd.io/bbolt"
)

// s3Server is gofakes3 over a bolt database file, served over HTTP.
type s3Server struct {
	db       *bolt.DB
	srv      *http.Server
	done     chan error
	endpoint string
}

func startS3(ctx context.Context, cfg S3Config, dataDir string, log zerolog.Logger) (*s3Server, error) {
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, fmt.Errorf("embedded s3: create data dir: %w", err)
	}
	path := filepath.Join(dataDir, "s3.bolt")
	// A timeout, since bolt otherwise waits forever for the file lock held
	// by another ferry dev on the same data dir.
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("embedded s3: %s is locked: another ferry dev is using data dir %s", path, filepath.Dir(dataDir))
		}
		return nil, fmt.Errorf("embedded s3: open %s: %w", path, err)
	}
	backend := s3bolt.New(db)
	if err := backend.CreateBucket(cfg.Bucket); err != nil && !gofakes3.HasErrorCode(err, gofakes3.ErrBucketAlreadyExists) {
		db.Close()
		return nil, fmt.Errorf("embedded s3: create bucket %q: %w", cfg.Bucket, err)
	}
	faker := gofakes3.New(backend,
		gofakes3.WithAutoBucket(true),
		gofakes3.WithLogger(s3Logger{log.With().Str("server", "s3").Logger()}),
		// Any clock and any credentials: this is a local dev server.
		gofakes3.WithTimeSkewLimit(0),
	)
	ln, err := listen("s3", FlagS3Listen, FlagS3Endpoint, cfg.Addr)
	if err != nil {
		db.Close()
		return nil, err
	}
	s := &s3Server{
		db:       db,
		srv:      &http.Server{Handler: faker.Server(), ReadHeaderTimeout: 10 * time.Second},
		done:     make(chan error, 1),
		endpoint: "http://" + ln.Addr().String(),
	}
	go func() {
		err := s.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.done <- err
	}()
	return s, nil
}

// close stops serving, waits for the serving goroutine and closes the database.
func (s *s3Server) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if err != nil {
		s.srv.Close()
	}
	err = errors.Join(err, <-s.done, s.db.Close())
	return err
}

// s3Logger bridges gofakes3's logger to zerolog.
type s3Logger struct{ log zerolog.Logger }

var _ gofakes3.Logger = s3Logger{}

func (l s3Logger) Print(level gofakes3.LogLevel, v ...any) {
	switch level {
	case gofakes3.LogErr:
		l.log.Warn().Msg(fmt.Sprint(v...))
	case gofakes3.LogWarn:
		l.log.Debug().Msg(fmt.Sprint(v...))
	default:
		l.log.Trace().Msg(fmt.Sprint(v...))
	}
}
