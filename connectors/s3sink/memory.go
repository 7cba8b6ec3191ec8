package s3sink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/ferryhq/ferry/runtime/connect"
)

// Memory: every open object's records sit in a spillBuf whose chunks are
// taken from the task's memory budget: its share of the worker's sink
// buffers, which the runtime derives from the worker's MCUs and hands to
// Start (connect.MemoryBudgetFrom; docs/memory.md). Every task's share is
// drawn from one budget per worker, so the worker's buffers stay within it
// whatever the partition count. When the share is spent, a buffer moves its
// chunks to a file in the worker's data directory (FERRY_DATA_DIR) and
// goes on there; the object's boundaries never move. Objects larger than
// s3.part.size go up as multipart uploads, one part buffer at a time (per
// task, outside the budget).

// defaultBufferBytes is the budget of the tasks started without one
// (outside Ferry's runtime, as in this package's tests), shared by them:
// what the runtime plans for a worker of one MCU.
const defaultBufferBytes = 256 << 20

const (
	minChunk = 4 << 10
	maxChunk = 1 << 20
)

// chunkPools hold released chunks for reuse, one pool per chunk size
// (minChunk doubling up to maxChunk). A chunk is written before it is read,
// so a reused one needs no zeroing; allocating and zeroing fresh chunks cost
// the JSON path about a tenth of its CPU. The pools hold memory only between
// garbage collections; a pooled chunk is outside every budget (a buffer
// takes its budget when it gets a chunk, as before). Nothing reads a chunk
// after its buffer released it: uploads read through the SDK, which drops
// its reference to a request body before the call returns.
var chunkPools [chunkClasses]sync.Pool

const chunkClasses = 9 // minChunk << 8 == maxChunk

// chunkClass returns the pool index of a chunk of size bytes, or -1.
func chunkClass(size int) int {
	for i := 0; i < chunkClasses; i++ {
		if size == minChunk<<i {
			return i
		}
	}
	return -1
}

// getChunk returns an empty chunk of capacity size, its bytes not zeroed.
func getChunk(size int) []byte {
	if i := chunkClass(size); i >= 0 {
		if p, ok := chunkPools[i].Get().(*[]byte); ok {
			return (*p)[:0]
		}
	}
	return make([]byte, 0, size)
}

// putChunk hands a chunk no longer referenced back for reuse.
func putChunk(c []byte) {
	if i := chunkClass(cap(c)); i >= 0 {
		c = c[:0]
		chunkPools[i].Put(&c)
	}
}

// budget is a task's byte allowance: the runtime's, or a plain one.
type budget struct {
	mu          sync.Mutex
	limit, used int64
	mb          *connect.MemoryBudget // the runtime's, when it handed one
}

func (b *budget) take(n int64) bool {
	if b.mb != nil {
		return b.mb.TryTake(n)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n > b.limit {
		return false
	}
	b.used += n
	return true
}

func (b *budget) give(n int64) {
	if b.mb != nil {
		b.mb.Release(n)
		return
	}
	b.mu.Lock()
	b.used -= n
	b.mu.Unlock()
}

// inUse returns the bytes taken.
func (b *budget) inUse() int64 {
	if b.mb != nil {
		return b.mb.InUse()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

var (
	defaultBudgetOnce sync.Once
	defaultBudget     *budget
)

// taskBudget returns the budget the runtime handed the task in ctx, else
// the one shared by tasks started without one.
func taskBudget(ctx context.Context) *budget {
	if mb := connect.MemoryBudgetFrom(ctx); mb != nil {
		return &budget{mb: mb}
	}
	defaultBudgetOnce.Do(func() { defaultBudget = &budget{limit: defaultBufferBytes} })
	return defaultBudget
}

var _ connect.BufferReporter = (*sinkTask)(nil)

// BufferedBytes returns the bytes the task holds in memory: its buffers'
// (spilled bytes are on disk) and the records it holds back while a
// partition's conditional writes settle. It is what the runtime weighs
// against the task's share before pausing its fetches. The buffers never
// hold more than the budget (they spill instead), so only held records can
// take the task over its share.
func (t *sinkTask) BufferedBytes() int64 {
	if t.mem == nil {
		return 0
	}
	return t.mem.inUse() + t.heldBytes
}

// spillBuf is an append-only byte buffer held in budgeted chunks, spilling
// to a file when the budget is spent. Once spilled it stays on disk: later
// writes gather in a write buffer of up to spillWriteBuf bytes, kept from
// the budget the chunks held (or taken when the budget has room), which
// goes to the file when full: a spilled buffer costs a write call per few
// KiB rather than one per record.
type spillBuf struct {
	b      *budget
	dir    string
	file   *os.File // spilled prefix
	flen   int64
	chunks [][]byte // in memory, after the file's bytes
	taken  int64    // budget held by chunks, or by the write buffer
	wbuf   []byte   // spilled: bytes after the file's, not yet written
	n      int64
}

// spillWriteBuf is the largest write buffer of a spilled buffer.
const spillWriteBuf = 16 << 10

func newSpillBuf(b *budget, dir string) *spillBuf { return &spillBuf{b: b, dir: dir} }

// Len returns the bytes written.
func (s *spillBuf) Len() int64 { return s.n }

// Spilled reports whether part of the buffer is on disk.
func (s *spillBuf) Spilled() bool { return s.file != nil }

// Write appends p.
func (s *spillBuf) Write(p []byte) (int, error) {
	total := len(p)
	for len(p) > 0 {
		if s.file != nil {
			if err := s.writeSpilled(p); err != nil {
				return total - len(p), err
			}
			return total, nil
		}
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
			s.chunks = append(s.chunks, getChunk(int(size)))
			continue
		}
		// Budget spent: this buffer goes to disk.
		if err := s.spill(); err != nil {
			return total - len(p), err
		}
	}
	return total, nil
}

// writeSpilled appends p after the file, through the write buffer.
func (s *spillBuf) writeSpilled(p []byte) error {
	if s.wbuf == nil && s.b.take(minChunk) {
		s.wbuf, s.taken = getChunk(minChunk), minChunk
	}
	if len(s.wbuf)+len(p) > cap(s.wbuf) {
		if err := s.flushWrites(); err != nil {
			return err
		}
		if len(p) >= cap(s.wbuf) {
			if _, err := s.file.Write(p); err != nil {
				return fmt.Errorf("spill to %s: %w", s.file.Name(), err)
			}
			s.flen += int64(len(p))
			s.n += int64(len(p))
			return nil
		}
	}
	s.wbuf = append(s.wbuf, p...)
	s.n += int64(len(p))
	return nil
}

// flushWrites moves the write buffer to the file.
func (s *spillBuf) flushWrites() error {
	if len(s.wbuf) == 0 {
		return nil
	}
	if _, err := s.file.Write(s.wbuf); err != nil {
		return fmt.Errorf("spill to %s: %w", s.file.Name(), err)
	}
	s.flen += int64(len(s.wbuf))
	s.wbuf = s.wbuf[:0]
	return nil
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
	s.freeChunks()
	// Keep part of the chunks' budget as the write buffer.
	keep := int64(0)
	for size := int64(spillWriteBuf); size >= minChunk; size /= 2 {
		if s.taken >= size {
			keep = size
			break
		}
	}
	s.b.give(s.taken - keep)
	s.taken = keep
	if keep > 0 {
		s.wbuf = getChunk(int(keep))
	}
	return nil
}

// ReadAt reads the buffer's bytes at off.
func (s *spillBuf) ReadAt(p []byte, off int64) (int, error) {
	n := 0
	for len(p) > 0 && off < s.n {
		var m int
		switch {
		case off < s.flen:
			want := p[:min(int64(len(p)), s.flen-off)]
			k, err := s.file.ReadAt(want, off)
			if err != nil && !(errors.Is(err, io.EOF) && k == len(want)) {
				return n + k, err
			}
			m = k
		case s.file != nil:
			m = copy(p, s.wbuf[off-s.flen:])
		default:
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
	s.freeChunks()
	s.b.give(s.taken)
	s.taken = 0
	if s.wbuf != nil {
		putChunk(s.wbuf)
		s.wbuf = nil
	}
	if s.file != nil {
		_ = s.file.Close()
		_ = os.Remove(s.file.Name())
		s.file = nil
	}
	s.n, s.flen = 0, 0
}

// freeChunks hands the chunks back to the pools.
func (s *spillBuf) freeChunks() {
	for i, c := range s.chunks {
		putChunk(c)
		s.chunks[i] = nil
	}
	s.chunks = nil
}
