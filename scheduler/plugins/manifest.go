// Package plugins reads Ferry custom plugins: a ZIP holding a worker
// executable built with extra connectors and a ferry-plugin.json manifest
// naming it and the connector classes it provides (docs/plugins.md).
//
// The control plane never runs connector code: it downloads the file from
// S3, checks the archive and its manifest (Inspect), records the plugin
// ACTIVE or CREATE_FAILED (Checker), and serves the checked file to the
// deployers at FilePath, pinned by its MD5.
package plugins

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/ferryhq/ferry/scheduler/store"
)

// ManifestName is the manifest's path at the root of the ZIP.
const ManifestName = "ferry-plugin.json"

// Connector types of the manifest.
const (
	TypeSink   = "sink"
	TypeSource = "source"
)

// maxManifest is the largest manifest read.
const maxManifest = 1 << 20

// Manifest is ferry-plugin.json.
type Manifest struct {
	// Name, Version and Description describe the plugin (optional).
	Name        string `json:"name,omitempty"`
	Version     string `json:"version,omitempty"`
	Description string `json:"description,omitempty"`
	// Binary is the path inside the ZIP of the worker executable: a
	// program whose main calls github.com/ferryhq/ferry/runtime/worker.Main.
	Binary string `json:"binary"`
	// Connectors are the connector classes the binary registers.
	Connectors []ManifestConnector `json:"connectors"`
}

// ManifestConnector is one connector class of the manifest.
type ManifestConnector struct {
	Class string `json:"class"`
	Type  string `json:"type"`
	Doc   string `json:"description,omitempty"`
}

// Failure codes a plugin's stateDescription carries when it is CREATE_FAILED.
const (
	CodeNotFound        = "FERRY_PLUGIN_NOT_FOUND"
	CodeAccessDenied    = "FERRY_PLUGIN_ACCESS_DENIED"
	CodeUnreadable      = "FERRY_PLUGIN_UNREADABLE"
	CodeNotZip          = "FERRY_PLUGIN_NOT_ZIP"
	CodeManifestMissing = "FERRY_PLUGIN_MANIFEST_MISSING"
	CodeManifestInvalid = "FERRY_PLUGIN_MANIFEST_INVALID"
	CodeTooLarge        = "FERRY_PLUGIN_TOO_LARGE"
)

// Problem is why a plugin file is refused, for its stateDescription.
type Problem struct {
	Code    string
	Message string
}

func (p *Problem) Error() string { return p.Message }

func problem(code, format string, args ...any) *Problem {
	return &Problem{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Inspect checks that r (size bytes) is a ZIP with a valid manifest at its
// root naming an executable file inside the archive, and returns the
// manifest. Every refusal is a *Problem naming what is wrong.
func Inspect(r io.ReaderAt, size int64) (Manifest, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return Manifest{}, problem(CodeNotZip, "the file is not a ZIP archive (%v); a Ferry plugin is a ZIP holding %s and a worker binary", err, ManifestName)
	}
	files := map[string]*zip.File{}
	for _, f := range zr.File {
		files[f.Name] = f
	}
	mf := files[ManifestName]
	if mf == nil {
		return Manifest{}, problem(CodeManifestMissing, "the ZIP has no %s at its root; a Ferry plugin's manifest names its worker binary and connector classes (docs/plugins.md)", ManifestName)
	}
	raw, err := readAll(mf, maxManifest)
	if err != nil {
		return Manifest{}, problem(CodeManifestInvalid, "%s: %v", ManifestName, err)
	}
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&m); err != nil {
		return Manifest{}, problem(CodeManifestInvalid, "%s is not valid JSON: %v", ManifestName, err)
	}
	if err := m.validate(files); err != nil {
		return Manifest{}, err
	}
	return m, nil
}

func readAll(f *zip.File, limit int64) ([]byte, error) {
	if f.UncompressedSize64 > uint64(limit) {
		return nil, fmt.Errorf("is %d bytes, more than the %d allowed", f.UncompressedSize64, limit)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("is more than the %d bytes allowed", limit)
	}
	return b, nil
}

// validate reports every problem of the manifest at once.
func (m Manifest) validate(files map[string]*zip.File) error {
	var msgs []string
	add := func(format string, args ...any) { msgs = append(msgs, fmt.Sprintf(format, args...)) }
	switch b := m.Binary; {
	case b == "":
		add("binary: is required: the path inside the ZIP of the worker executable")
	case !ValidBinaryPath(b):
		add("binary: %q must be a relative path inside the ZIP, without '..'", b)
	default:
		f := files[b]
		switch {
		case f == nil:
			add("binary: %q is not a file in the ZIP", b)
		case !f.Mode().IsRegular():
			add("binary: %q is not a regular file (mode %s)", b, f.Mode())
		case f.Mode().Perm()&0o111 == 0:
			add("binary: %q is not executable (mode %s): set its mode before zipping (chmod +x, then zip, which keeps it)", b, f.Mode().Perm())
		}
	}
	if len(m.Connectors) == 0 {
		add("connectors: is required: at least one {\"class\": ..., \"type\": \"sink\"|\"source\"}")
	}
	seen := map[string]bool{}
	for i, c := range m.Connectors {
		class := strings.TrimSpace(c.Class)
		switch {
		case class == "":
			add("connectors[%d].class: is required", i)
		case class != c.Class:
			add("connectors[%d].class: %q must not have surrounding spaces", i, c.Class)
		case seen[class]:
			add("connectors[%d].class: %q is listed twice", i, class)
		}
		seen[class] = true
		if c.Type != TypeSink && c.Type != TypeSource {
			add("connectors[%d].type: must be %q or %q, got %q", i, TypeSink, TypeSource, c.Type)
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	return problem(CodeManifestInvalid, "%s is invalid: %s", ManifestName, strings.Join(msgs, "; "))
}

// ValidBinaryPath reports whether p is a clean relative slash-separated
// path that stays inside the directory a ZIP is unpacked into.
func ValidBinaryPath(p string) bool {
	if p == "" || strings.HasPrefix(p, "/") || strings.Contains(p, "\\") || path.Clean(p) != p {
		return false
	}
	return p != "." && p != ".." && !strings.HasPrefix(p, "../")
}

// StoreConnectors converts the manifest's classes for the plugin record.
func (m Manifest) StoreConnectors() []store.PluginConnector {
	out := make([]store.PluginConnector, 0, len(m.Connectors))
	for _, c := range m.Connectors {
		out = append(out, store.PluginConnector{Class: c.Class, Type: c.Type})
	}
	return out
}

// errTooLarge marks a download over MaxFileSize.
var errTooLarge = errors.New("too large")
