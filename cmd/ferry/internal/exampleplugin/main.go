// Command exampleplugin is a Ferry custom plugin's worker binary: Ferry's
// own connectors plus one more, com.example.ferry.FileSink. It is what
// docs/plugins.md walks through and what the custom plugin tests build,
// zip with a ferry-plugin.json manifest, upload to S3 and run.
//
// A plugin author's main package looks the same: import the connectors to
// register (each registers itself in connect.Default()), then hand over to
// worker.Main.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	// Ferry's own connectors, so this binary runs them too.
	_ "github.com/ferryhq/ferry/connectors/all"
	"github.com/ferryhq/ferry/runtime/connect"
	"github.com/ferryhq/ferry/runtime/worker"
)

// FileSinkClass is the connector class the plugin adds.
const FileSinkClass = "com.example.ferry.FileSink"

// KeyDir is the FileSink's one setting: the directory it writes to.
const KeyDir = "file.dir"

func init() {
	if err := connect.Register(connect.Plugin{
		Class: FileSinkClass,
		Kind:  connect.Sink,
		Doc:   "appends every record to <file.dir>/<topic>-<partition>.jsonl as {\"offset\":n,\"key\":...,\"value\":...}",
		Config: []connect.ConfigField{
			{Name: KeyDir, Type: connect.TypeString, Required: true, Doc: "directory of the files"},
		},
		NewSinkTask: func() connect.SinkTask { return &fileSink{} },
	}); err != nil {
		panic(err)
	}
}

func main() { worker.Main() }

// fileSink appends records to one file per partition; what it returns
// from PreCommit is synced to disk.
type fileSink struct {
	dir   string
	files map[connect.TopicPartition]*partFile
}

type partFile struct {
	f    *os.File
	w    *bufio.Writer
	next int64 // offset after the last record written
}

var _ connect.SinkTask = (*fileSink)(nil)

func (s *fileSink) Start(_ context.Context, cfg map[string]string) error {
	s.dir = strings.TrimSpace(cfg[KeyDir])
	if s.dir == "" {
		return fmt.Errorf("%s is required", KeyDir)
	}
	s.files = map[connect.TopicPartition]*partFile{}
	return os.MkdirAll(s.dir, 0o755)
}

func (s *fileSink) Open(context.Context, []connect.TopicPartition) error { return nil }

func (s *fileSink) Put(_ context.Context, records []connect.Record) error {
	for i := range records {
		r := &records[i]
		tp := r.OriginalTopicPartition()
		pf := s.files[tp]
		if pf == nil {
			name := filepath.Join(s.dir, fmt.Sprintf("%s-%d.jsonl", tp.Topic, tp.Partition))
			f, err := os.OpenFile(name, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
			if err != nil {
				return err
			}
			pf = &partFile{f: f, w: bufio.NewWriter(f)}
			s.files[tp] = pf
		}
		line, err := json.Marshal(map[string]any{"offset": r.Offset, "key": string(r.RawKey), "value": string(r.RawValue)})
		if err != nil {
			return err
		}
		if _, err := pf.w.Write(append(line, '\n')); err != nil {
			return err
		}
		pf.next = r.Offset + 1
	}
	return nil
}

func (s *fileSink) PreCommit(_ context.Context, current map[connect.TopicPartition]int64) (map[connect.TopicPartition]int64, error) {
	out := map[connect.TopicPartition]int64{}
	for tp := range current {
		pf := s.files[tp]
		if pf == nil {
			continue
		}
		if err := pf.w.Flush(); err != nil {
			return nil, err
		}
		if err := pf.f.Sync(); err != nil {
			return nil, err
		}
		out[tp] = pf.next
	}
	return out, nil
}

func (s *fileSink) Close(_ context.Context, partitions []connect.TopicPartition) error {
	var errs []error
	for _, tp := range partitions {
		if pf := s.files[tp]; pf != nil {
			errs = append(errs, pf.w.Flush(), pf.f.Close())
			delete(s.files, tp)
		}
	}
	return errors.Join(errs...)
}

func (s *fileSink) Stop() error {
	var errs []error
	for tp, pf := range s.files {
		errs = append(errs, pf.w.Flush(), pf.f.Close())
		delete(s.files, tp)
	}
	return errors.Join(errs...)
}
