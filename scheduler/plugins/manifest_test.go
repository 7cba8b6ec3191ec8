package plugins

import (
	"archive/zip"
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"
)

type entry struct {
	mode os.FileMode
	body string
}

func zipOf(t *testing.T, files map[string]entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, f := range files {
		h := &zip.FileHeader{Name: name}
		h.SetMode(f.mode)
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(f.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestInspect(t *testing.T) {
	bin := entry{0o755, "\x7fELF..."}
	for _, tc := range []struct {
		name  string
		file  []byte
		code  string
		wants []string
	}{
		{"valid", zipOf(t, map[string]entry{
			ManifestName:      {0o644, `{"name":"acme","binary":"bin/w","connectors":[{"class":"com.acme.Sink","type":"sink"},{"class":"com.acme.Source","type":"source"}],"extra":1}`},
			"bin/w":           bin,
			"lib/config.yaml": {0o644, "a: 1"},
		}), "", nil},
		{"not a zip", []byte("hello"), CodeNotZip, []string{"not a ZIP archive"}},
		{"no manifest", zipOf(t, map[string]entry{"bin/w": bin}), CodeManifestMissing, []string{"no ferry-plugin.json at its root"}},
		{"manifest in a folder", zipOf(t, map[string]entry{"acme/" + ManifestName: {0o644, `{}`}, "bin/w": bin}), CodeManifestMissing, []string{"at its root"}},
		{"not json", zipOf(t, map[string]entry{ManifestName: {0o644, `{"binary":`}}), CodeManifestInvalid, []string{"is not valid JSON"}},
		{"empty manifest", zipOf(t, map[string]entry{ManifestName: {0o644, `{}`}}), CodeManifestInvalid, []string{"binary: is required", "connectors: is required"}},
		{"every field wrong", zipOf(t, map[string]entry{
			ManifestName: {0o644, `{"binary":"../w","connectors":[{"class":"","type":"sink"},{"class":" a.B","type":"source"},{"class":"c.D","type":"SINK"},{"class":"c.D","type":"sink"}]}`},
		}), CodeManifestInvalid, []string{`binary: "../w" must be a relative path`, "connectors[0].class: is required", `connectors[1].class: " a.B" must not have surrounding spaces`,
			`connectors[2].type: must be "sink" or "source", got "SINK"`, `connectors[3].class: "c.D" is listed twice`}},
		{"binary missing", zipOf(t, map[string]entry{ManifestName: {0o644, `{"binary":"bin/x","connectors":[{"class":"a.B","type":"sink"}]}`}, "bin/w": bin}),
			CodeManifestInvalid, []string{`binary: "bin/x" is not a file in the ZIP`}},
		{"binary not executable", zipOf(t, map[string]entry{ManifestName: {0o644, `{"binary":"bin/w","connectors":[{"class":"a.B","type":"sink"}]}`}, "bin/w": {0o644, "x"}}),
			CodeManifestInvalid, []string{`binary: "bin/w" is not executable (mode -rw-r--r--)`, "chmod +x"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Inspect(bytes.NewReader(tc.file), int64(len(tc.file)))
			if tc.code == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if m.Binary != "bin/w" || len(m.Connectors) != 2 || m.StoreConnectors()[1].Class != "com.acme.Source" || m.StoreConnectors()[1].Type != "source" {
					t.Errorf("manifest %+v", m)
				}
				return
			}
			var p *Problem
			if !errors.As(err, &p) || p.Code != tc.code {
				t.Fatalf("error %v, want a %s problem", err, tc.code)
			}
			for _, w := range tc.wants {
				if !strings.Contains(p.Message, w) {
					t.Errorf("message %q does not say %q", p.Message, w)
				}
			}
		})
	}
}

func TestFilePath(t *testing.T) {
	p := FilePath("acme-sink", "0b1c2d3e-4f50", 7)
	if p != "/ferry/plugin-files/acme-sink/0b1c2d3e-4f50/7.zip" {
		t.Fatalf("FilePath = %q", p)
	}
	name, id, rev, ok := ParseFilePath(p)
	if !ok || name != "acme-sink" || id != "0b1c2d3e-4f50" || rev != 7 {
		t.Fatalf("ParseFilePath(%q) = %q %q %d %v", p, name, id, rev, ok)
	}
	for _, bad := range []string{"/ferry/plugin-files/a/b/0.zip", "/ferry/plugin-files/a/b/1", "/ferry/plugin-files/a/1.zip", "/ferry/plugin-files/a/b/c/1.zip", "/v1/x"} {
		if _, _, _, ok := ParseFilePath(bad); ok {
			t.Errorf("ParseFilePath(%q) accepted", bad)
		}
	}
	for p, want := range map[string]bool{"bin/w": true, "w": true, "/bin/w": false, "../w": false, "bin/../w": false, "a\\b": false, ".": false, "": false, "bin//w": false} {
		if ValidBinaryPath(p) != want {
			t.Errorf("ValidBinaryPath(%q) = %v", p, !want)
		}
	}
}

func TestBucketFromARN(t *testing.T) {
	if b, err := BucketFromARN("arn:aws:s3:::my-plugins"); err != nil || b != "my-plugins" {
		t.Errorf("%q %v", b, err)
	}
	if b, err := BucketFromARN("arn:aws-cn:s3:::p"); err != nil || b != "p" {
		t.Errorf("china partition: %q %v", b, err)
	}
	for _, bad := range []string{"my-plugins", "arn:aws:s3:::", "arn:aws:s3:::b/key", "arn:aws:s3:us-east-1:1:b", "arn:aws:kafka:::b"} {
		if _, err := BucketFromARN(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
