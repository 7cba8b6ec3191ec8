package s3sink

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
)

// pqRow is one Parquet row seen column by column, as any reader sees the
// file: per leaf column path ("addr.city", "tags.array"), its values in
// order with their levels.
type pqRow map[string][]parquet.Value

// strs renders a column's values: strings, numbers, and <nil> for nulls.
func (r pqRow) strs(col string) []string {
	var out []string
	for _, v := range r[col] {
		if v.IsNull() {
			out = append(out, "<nil>")
			continue
		}
		out = append(out, v.String())
	}
	return out
}

// readParquet opens a Parquet file and returns its schema and rows.
func readParquet(t *testing.T, b []byte) (*parquet.Schema, []pqRow) {
	t.Helper()
	f, err := parquet.OpenFile(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatalf("open parquet: %v", err)
	}
	var paths []string
	for _, p := range f.Schema().Columns() {
		paths = append(paths, strings.Join(p, "."))
	}
	var out []pqRow
	for _, rg := range f.RowGroups() {
		rows := rg.Rows()
		buf := make([]parquet.Row, 16)
		for {
			n, err := rows.ReadRows(buf)
			for _, row := range buf[:n] {
				r := pqRow{}
				for _, v := range row {
					p := paths[v.Column()]
					r[p] = append(r[p], v.Clone())
				}
				out = append(out, r)
			}
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("read parquet rows: %v", err)
			}
		}
		_ = rows.Close()
	}
	return f.Schema(), out
}

// pqLogicalTypes returns the logical type each schema element of a Parquet
// file's footer declares ("" for none), by name.
func pqLogicalTypes(t *testing.T, b []byte) map[string]string {
	t.Helper()
	f, err := parquet.OpenFile(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range f.Metadata().Schema {
		lt := ""
		if e.LogicalType.Value != nil {
			lt = e.LogicalType.String()
		}
		out[e.Name] = lt
	}
	return out
}
