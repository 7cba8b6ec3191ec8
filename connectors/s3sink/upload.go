package s3sink

import (
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/ferryhq/ferry/runtime/connect"
)

// Uploads overlap consuming. A commit hands the partition's open objects to
// a batch that uploads in the background while Put goes on buffering;
// at most maxUploads batches of a task are in flight, and Put waits for a
// slot when they all are (that is the back-pressure of a slow S3). The
// objects keep their buffers, and so their share of the memory budget,
// until they are in S3.
//
// A partition's batches settle in commit order: the partition is durable up
// to a batch's end only when that batch and every earlier one are in S3.
// PreCommit first waits for the batches in flight of the partitions it is
// asked about (at most maxUploads object uploads), so what it reports — on
// every offset commit and before a revoked partition is let go — includes
// everything complete. A failed upload fails the task at the next Put; its
// batch and every later one of the partition never become durable, so the
// restarted task reads them again.
//
// With rotate.schedule.interval.ms, a batch may find its object already in
// S3 (written before a crash); the records it holds are then skipped, which
// changes where the partition's next object starts. So in that mode a
// partition's next record waits until the partition's batches have settled;
// other partitions go on.

// maxUploads is how many batches a task has in flight.
const maxUploads = 4

// batch is one commit of a partition: its open objects, uploaded in key
// order.
type batch struct {
	name  connect.TopicPartition // what the objects are named after
	files []*openFile
	next  int64         // the partition is durable up to here once the batch settles
	done  chan struct{} // closed when the upload ended; then err and skip are set
	err   error
	skip  map[string]int64 // conditional writes: per encoded partition, records found in S3
	// scanned counts the objects found in place (max.files.scan.limit).
	scanned int
}

// commit hands the partition's open objects to an upload batch. It waits
// for an upload slot, so at most maxUploads batches are in flight.
func (t *sinkTask) commit(ctx context.Context, st *partState) error {
	names := make([]string, 0, len(st.files))
	for n := range st.files {
		names = append(names, n)
	}
	sort.Strings(names)
	b := &batch{name: st.name, next: st.next, done: make(chan struct{})}
	for _, n := range names {
		b.files = append(b.files, st.files[n])
	}
	st.files, st.count = map[string]*openFile{}, 0
	st.pending = append(st.pending, b)
	select {
	case t.slots <- struct{}{}:
	case <-ctx.Done():
		b.fail(ctx.Err())
		return ctx.Err()
	}
	t.uploads.Add(1)
	go func() {
		defer t.uploads.Done()
		defer func() { <-t.slots }()
		var err error
		for _, f := range b.files {
			if err == nil {
				err = t.upload(t.upCtx, b, f)
			}
			f.release()
		}
		if err != nil {
			t.setUploadErr(err)
		}
		b.err = err
		close(b.done)
	}()
	return nil
}

// fail ends a batch that never started.
func (b *batch) fail(err error) {
	for _, f := range b.files {
		f.release()
	}
	b.err = err
	close(b.done)
}

func (t *sinkTask) setUploadErr(err error) {
	t.upMu.Lock()
	defer t.upMu.Unlock()
	if t.upErr == nil {
		t.upErr = err
	}
}

// awaitUploads waits for every batch in flight and returns the first
// failed upload's error.
func (t *sinkTask) awaitUploads() error {
	t.uploads.Wait()
	return t.uploadErr()
}

// uploadErr returns the first failed upload's error.
func (t *sinkTask) uploadErr() error {
	t.upMu.Lock()
	defer t.upMu.Unlock()
	return t.upErr
}

// settle advances the partition's durable offset over its settled batches,
// in order; with wait, it first waits for those in flight. It stops at a
// failed batch.
func (t *sinkTask) settle(ctx context.Context, st *partState, wait bool) error {
	for len(st.pending) > 0 {
		b := st.pending[0]
		if wait {
			select {
			case <-b.done:
			case <-ctx.Done():
				return ctx.Err()
			}
		} else {
			select {
			case <-b.done:
			default:
				return nil
			}
		}
		if b.err != nil {
			return b.err
		}
		st.pending = st.pending[1:]
		st.durable = b.next
		for enc, end := range b.skip {
			if st.skip == nil {
				st.skip = map[string]int64{}
			}
			st.skip[enc] = max(st.skip[enc], end)
		}
		for enc, end := range st.skip {
			if end < st.durable {
				delete(st.skip, enc) // records up to end are behind the commit now
			}
		}
	}
	return nil
}

// drain waits for the partition's batches in flight, whatever their end:
// nothing is written for a partition after it is let go.
func (st *partState) drain() {
	for _, b := range st.pending {
		<-b.done
	}
	st.pending = nil
}

// settledTo records that the partition is settled up to next once what is
// pending is: records that need no upload (skipped) with nothing buffered.
func (st *partState) settledTo(next int64) {
	if n := len(st.pending); n > 0 {
		st.pending[n-1].next = next
		return
	}
	st.durable = next
}

// upload writes f's objects: its headers and keys objects, then the
// primary one (values; keys for tombstones), which carries the end offset.
// With conditional writes an object found in place was written by an
// earlier attempt. When the primary object of f's start is in place, the
// records it holds are skipped (b.skip) and the rest of f is written after
// them, scanning forward; a keys or headers object without its primary is
// an orphan of an attempt that ended in between, and is replaced.
func (t *sinkTask) upload(ctx context.Context, b *batch, f *openFile) error {
	type object struct {
		kind string
		s    *stream
	}
	var objs []object
	if t.s.storeHeaders {
		objs = append(objs, object{".headers", &f.hdrs})
	}
	if t.s.storeKeys { // always with tombstones (behavior.on.null.values=write needs it)
		objs = append(objs, object{".keys", &f.keys})
	}
	if !f.tomb {
		objs = append(objs, object{"", &f.vals})
	}
	primaryKey := t.s.key(b.name, f.encoded, f.first, objs[len(objs)-1].kind)
	for _, o := range objs {
		key := t.s.key(b.name, f.encoded, f.first, o.kind)
		exists, err := t.writeObject(ctx, f, o.s, o.kind, key, t.s.conditional)
		if err != nil {
			return err
		}
		if !exists {
			continue
		}
		end, found, err := t.objectEnd(ctx, primaryKey)
		if err != nil {
			return err
		}
		if !found {
			// A keys or headers object whose records' object was never
			// written (the attempt ended in between): it is replaced by
			// this object's view, which the records' object will match.
			t.log.Warn().Str("key", key).Msg("replacing an orphaned object an earlier attempt left")
			if _, err := t.writeObject(ctx, f, o.s, o.kind, key, false); err != nil {
				return err
			}
			continue
		}
		key = primaryKey
		b.scanned++
		if b.scanned > t.s.maxFilesScan {
			return fmt.Errorf("s3://%s/%s: more than %s=%d objects already in place after one commit", t.s.bucket, key, KeyMaxFilesScan, t.s.maxFilesScan)
		}
		if b.skip == nil {
			b.skip = map[string]int64{}
		}
		b.skip[f.encoded] = max(b.skip[f.encoded], end)
		t.log.Info().Str("key", key).Int64("end_offset", end).Msg("object already written by an earlier attempt; continuing after it")
		j, err := f.search(end)
		if err != nil || j == f.n {
			return err
		}
		rest, err := f.tail(j, t.mem, t.dir)
		if err != nil {
			return fmt.Errorf("cut s3://%s/%s after offset %d: %w", t.s.bucket, key, end, err)
		}
		defer rest.release()
		return t.upload(ctx, b, rest)
	}
	return nil
}

// writeObject builds (row formats) and writes one object of f. With
// conditional, an object already in place is left as it is and reported.
func (t *sinkTask) writeObject(ctx context.Context, f *openFile, s *stream, kind, key string, conditional bool) (exists bool, err error) {
	format := t.s.formatOf(kind)
	body, size := io.ReaderAt(s.buf), s.buf.Len()
	if isRowFormat(format) {
		ob := newSpillBuf(t.mem, t.dir)
		defer ob.Release()
		if err := t.rowObject(ob, format, s, key, kind); err != nil {
			return false, fmt.Errorf("encode s3://%s/%s: %w", t.s.bucket, key, err)
		}
		body, size = ob, ob.Len()
	}
	err = t.put1(ctx, key, body, size, f, conditional, t.s.gzipped(format))
	if conditional && isPreconditionFailed(err) {
		return true, nil
	}
	return false, err
}

// put1 writes one object of size bytes from src, gzipped with gz: in one
// PutObject when it is smaller than s3.part.size, else as a multipart upload
// part by part. Bodies are sections of src, so nothing is copied.
func (t *sinkTask) put1(ctx context.Context, key string, src io.ReaderAt, size int64, f *openFile, conditional, gz bool) error {
	if gz {
		zb := newSpillBuf(t.mem, t.dir)
		defer zb.Release()
		zw, err := gzip.NewWriterLevel(zb, t.s.gzipLevel)
		if err != nil {
			return fmt.Errorf("gzip %s: %w", key, err)
		}
		if _, err := io.Copy(zw, io.NewSectionReader(src, 0, size)); err != nil {
			return fmt.Errorf("gzip %s: %w", key, err)
		}
		if err := zw.Close(); err != nil {
			return fmt.Errorf("gzip %s: %w", key, err)
		}
		src, size = zb, zb.Len()
	}
	// A hung request must not hold the partition (and the group's
	// rebalances) forever; the task fails and restarts from the commit.
	ctx, cancel := context.WithTimeout(ctx, uploadTimeout)
	defer cancel()
	a := t.attrs(f, conditional)
	mp, ok := t.client.(multipartClient)
	if size < t.s.partSize || !ok {
		in := &s3.PutObjectInput{
			Bucket: aws.String(t.s.bucket), Key: aws.String(key),
			Body: io.NewSectionReader(src, 0, size), ContentLength: aws.Int64(size),
			Metadata: a.meta, Tagging: a.tagging, ServerSideEncryption: a.sse, SSEKMSKeyId: a.kms,
			SSECustomerAlgorithm: a.cAlg, SSECustomerKey: a.cKey, SSECustomerKeyMD5: a.cKeyMD5, ACL: a.acl, IfNoneMatch: a.ifNoneMt,
		}
		if _, err := t.client.PutObject(ctx, in); err != nil {
			return fmt.Errorf("upload s3://%s/%s: %w%s", t.s.bucket, key, err, hint(err))
		}
		return nil
	}
	created, err := mp.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket: aws.String(t.s.bucket), Key: aws.String(key),
		Metadata: a.meta, Tagging: a.tagging, ServerSideEncryption: a.sse, SSEKMSKeyId: a.kms,
		SSECustomerAlgorithm: a.cAlg, SSECustomerKey: a.cKey, SSECustomerKeyMD5: a.cKeyMD5, ACL: a.acl,
	})
	if err != nil {
		return fmt.Errorf("start multipart upload of s3://%s/%s: %w%s", t.s.bucket, key, err, hint(err))
	}
	abort := func(cause error) error {
		actx, acancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer acancel()
		_, _ = mp.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{Bucket: aws.String(t.s.bucket), Key: aws.String(key), UploadId: created.UploadId})
		return cause
	}
	var parts []types.CompletedPart
	num := int32(1)
	for off := int64(0); off < size; off += t.s.partSize {
		n := min(t.s.partSize, size-off)
		out, err := mp.UploadPart(ctx, &s3.UploadPartInput{
			Bucket: aws.String(t.s.bucket), Key: aws.String(key), UploadId: created.UploadId, PartNumber: aws.Int32(num),
			Body: io.NewSectionReader(src, off, n), ContentLength: aws.Int64(n),
			SSECustomerAlgorithm: a.cAlg, SSECustomerKey: a.cKey, SSECustomerKeyMD5: a.cKeyMD5,
		})
		if err != nil {
			return abort(fmt.Errorf("upload part %d of s3://%s/%s: %w%s", num, t.s.bucket, key, err, hint(err)))
		}
		parts = append(parts, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(num)})
		num++
	}
	if _, err := mp.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: aws.String(t.s.bucket), Key: aws.String(key), UploadId: created.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}, IfNoneMatch: a.ifNoneMt,
	}); err != nil {
		return abort(fmt.Errorf("complete multipart upload of s3://%s/%s: %w%s", t.s.bucket, key, err, hint(err)))
	}
	return nil
}
