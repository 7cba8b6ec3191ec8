package s3sink

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
)

// Memory: every open object's records sit in a spillBuf whose chunks are
// taken from one budget per worker process, shared by all tasks and
// partitions. When the budget is spent, a buffer moves its chunks to a file
// in the worker's data directory (FERRY_DATA_DIR) and goes on there; the
// object's boundaries never move. Objects larger than s3.part.size go up as
// multipart uploads, one part buffer at a time.

// MCUMemory is the memory of one MCU (MSK Connect: 1 vCPU, 4 GiB); the
// sink's buffers get a quarter of the worker's.
const MCUMemory = 4 << 30

// EnvMemoryBytes overrides the worker's buffer budget in bytes.
const EnvMemoryBytes = "FERRY_S3SINK_MEMORY_BYTES"

const (
	minChunk = 4 << 10
	maxChunk = 1 << 20
)

// budget is a byte allowance.
type budget struct {
	mu          sync.Mutex
	limit, used int64
}

func (b *budget) take(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n > b.limit {
		return false
	}
	b.used += n
	return true
}

func (b *budget) give(n int64) {
	b.mu.Lock()
	b.used -= n
	b.mu.Unlock()
}

// InUse returns the bytes taken.
func (b *budget) inUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

var (
	workerBudgetOnce sync.Once
	workerBudget     *budget
)

// sharedBudget returns the worker's budget: EnvMemoryBytes, else a quarter
// of the MCUs of the worker spec (FERRY_WORKER_SPEC), else of one MCU.
func sharedBudget() *budget {
	workerBudgetOnce.Do(func() {
		limit := int64(MCUMemory / 4)
		if v, err := strconv.ParseInt(os.Getenv(EnvMemoryBytes), 10, 64); err == nil && v > 0 {
			limit = v
		} else if b, err := os.ReadFile(os.Getenv("FERRY_WORKER_SPEC")); err == nil {
			var spec struct {
				Mcu int `json:"mcu"`
			}
			if json.Unmarshal(b, &spec) == nil && spec.Mcu > 0 {
				limit = int64(spec.Mcu) * MCUMemory / 4
			}
		}
		workerBudget = &budget{limit: limit}
	})
	return workerBudget
}

// spillBuf is an append-only byte buffer held in budgeted chunks, spilling
// to a file when the budget is spent.
type spillBuf struct {
	b      *budget
	dir    string
	file   *os.File // spilled prefix
	flen   int64
	chunks [][]byte // in memory, after the file's bytes
	taken  int64    // budget held by chunks
	n      int64
}

func newSpillBuf(b *budget, dir string) *spillBuf { return &spillBuf{b: b, dir: dir} }

// Len returns the bytes written.
func (s *spillBuf) Len() int64 { return s.n }

// Spilled reports whether part of the buffer is on disk.
func (s *spillBuf) Spilled() bool { return s.file != nil }

// Write appends p.
func (s *spillBuf) Write(p []byte) (int, error) {
	total := len(p)
	for len(p) > 0 {
		if k := len(s.chunks); k > 0 {
			c := s.chunks[k-1]
			if room := cap(c) - len(c); room > 0 {
				m := min(room, len(p))
				s.chunks[k-1] = append(c, p[:m]...)
				p, s.n = p[m:], s.n+int64(m)
				continue
			}
		}
		size := int64(minChunk)
		if k := len(s.chunks); k > 0 {
			size = min(int64(cap(s.chunks[k-1]))*2, maxChunk)
		}
		if s.b.take(size) {
			s.taken += size
			s.chunks = append(s.chunks, make([]byte, 0, size))
			continue
		}
		// Budget spent: this buffer goes to disk, and so does p.
		if err := s.spill(); err != nil {
			return total - len(p), err
		}
		if _, err := s.file.Write(p); err != nil {
			return total - len(p), fmt.Errorf("spill to %s: %w", s.file.Name(), err)
		}
		s.flen += int64(len(p))
		s.n += int64(len(p))
		p = nil
	}
	return total, nil
}

// spill moves the chunks to the file.
func (s *spillBuf) spill() error {
	if s.file == nil {
		f, err := os.CreateTemp(s.dir, "s3sink-spill-*")
		if err != nil {
			return fmt.Errorf("spill buffer: %w", err)
		}
		s.file = f
	}
	for _, c := range s.chunks {
		if _, err := s.file.Write(c); err != nil {
			return fmt.Errorf("spill to %s: %w", s.file.Name(), err)
		}
		s.flen += int64(len(c))
	}
	s.chunks = nil
	s.b.give(s.taken)
	s.taken = 0
	return nil
}

// ReadAt reads the buffer's bytes at off.
func (s *spillBuf) ReadAt(p []byte, off int64) (int, error) {
	n := 0
	for len(p) > 0 && off < s.n {
		var m int
		if off < s.flen {
			want := p[:min(int64(len(p)), s.flen-off)]
			k, err := s.file.ReadAt(want, off)
			if err != nil && !(errors.Is(err, io.EOF) && k == len(want)) {
				return n + k, err
			}
			m = k
		} else {
			pos := off - s.flen
			for _, c := range s.chunks {
				if pos < int64(len(c)) {
					m = copy(p, c[pos:])
					break
				}
				pos -= int64(len(c))
			}
		}
		p, off, n = p[m:], off+int64(m), n+m
	}
	if len(p) > 0 {
		return n, io.EOF
	}
	return n, nil
}

// Bytes returns the whole buffer in one slice (for small buffers).
func (s *spillBuf) Bytes() ([]byte, error) {
	out := make([]byte, s.n)
	if _, err := s.ReadAt(out, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return out, nil
}

// Release frees the chunks and removes the spill file.
func (s *spillBuf) Release() {
	s.chunks = nil
	s.b.give(s.taken)
	s.taken = 0
	if s.file != nil {
		_ = s.file.Close()
		_ = os.Remove(s.file.Name())
		s.file = nil
	}
	s.n, s.flen = 0, 0
}
