package local

import (
	"archive/zip"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ferryhq/ferry/scheduler"
)

// pluginRetry is how long a plugin that could not be installed waits before
// the next attempt.
const pluginRetry = 10 * time.Second

// pluginDownloadTimeout bounds one download of a plugin's ZIP.
const pluginDownloadTimeout = 5 * time.Minute

// installedMark is written into a plugin's directory once it is complete.
const installedMark = ".ferry-installed"

// pluginState is one plugin revision on disk, or why it is not.
type pluginState struct {
	bin    string    // the worker executable, once installed
	err    error     // the last failure
	failed time.Time // when it failed
}

func (e *Executor) pluginsDir() string { return filepath.Join(e.cfg.DataDir, "plugins") }

// pluginCommand returns the command that runs a worker of the plugin,
// downloading and unpacking it first if this revision is not on disk yet:
// once per plugin revision and MD5, shared by every connector using it.
// Called with applyMu held.
func (e *Executor) pluginCommand(ctx context.Context, p *scheduler.PluginArtifact) ([]string, error) {
	if p.Md5 == "" || p.URL == "" {
		return nil, fmt.Errorf("custom plugin %s: no URL or MD5 to fetch it with", p.Name)
	}
	key := fmt.Sprintf("%s-r%d-%s", p.Name, p.Revision, p.Md5)
	if st := e.plugins[key]; st != nil {
		if st.bin != "" {
			return []string{st.bin, "worker"}, nil
		}
		if time.Since(st.failed) < pluginRetry {
			return nil, st.err
		}
	}
	bin, err := e.installPlugin(ctx, key, p)
	if err != nil {
		err = fmt.Errorf("custom plugin %s revision %d: %w", p.Name, p.Revision, err)
		e.plugins[key] = &pluginState{err: err, failed: time.Now()}
		return nil, err
	}
	e.plugins[key] = &pluginState{bin: bin}
	return []string{bin, "worker"}, nil
}

// installPlugin makes <DataDir>/plugins/<key>/ hold the plugin's unpacked
// ZIP, its MD5 checked, and returns the path of its binary.
func (e *Executor) installPlugin(ctx context.Context, key string, p *scheduler.PluginArtifact) (string, error) {
	if !validRelPath(p.Binary) {
		return "", fmt.Errorf("binary %q is not a relative path inside the ZIP", p.Binary)
	}
	dir := filepath.Join(e.pluginsDir(), key)
	bin := filepath.Join(dir, filepath.FromSlash(p.Binary))
	if _, err := os.Stat(filepath.Join(dir, installedMark)); err == nil {
		return bin, nil // installed by an earlier ferry process
	}
	if err := os.MkdirAll(e.pluginsDir(), 0o755); err != nil {
		return "", fmt.Errorf("create plugins dir: %w", err)
	}
	start := time.Now()
	zipPath, size, err := e.download(ctx, p)
	if err != nil {
		return "", err
	}
	defer os.Remove(zipPath)
	tmp, err := os.MkdirTemp(e.pluginsDir(), ".unpack-")
	if err != nil {
		return "", fmt.Errorf("unpack: %w", err)
	}
	defer os.RemoveAll(tmp) // nothing left once renamed
	if err := unzip(zipPath, tmp); err != nil {
		return "", fmt.Errorf("unpack: %w", err)
	}
	tmpBin := filepath.Join(tmp, filepath.FromSlash(p.Binary))
	fi, err := os.Stat(tmpBin)
	if err != nil || !fi.Mode().IsRegular() {
		return "", fmt.Errorf("binary %q is not a file in the ZIP", p.Binary)
	}
	if err := os.Chmod(tmpBin, fi.Mode().Perm()|0o755); err != nil {
		return "", fmt.Errorf("make %s executable: %w", p.Binary, err)
	}
	if err := os.WriteFile(filepath.Join(tmp, installedMark), []byte(p.Md5+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("unpack: %w", err)
	}
	if err := os.RemoveAll(dir); err != nil { // a half-installed earlier attempt
		return "", fmt.Errorf("unpack: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return "", fmt.Errorf("unpack: %w", err)
	}
	e.log.Info().Str("plugin", p.Name).Int64("revision", p.Revision).Int64("bytes", size).Str("md5", p.Md5).
		Str("binary", bin).Dur("took", time.Since(start)).Msg("custom plugin installed")
	return bin, nil
}

// download fetches the plugin's ZIP into a temporary file, refusing it
// unless its MD5 is the plugin's.
func (e *Executor) download(ctx context.Context, p *scheduler.PluginArtifact) (string, int64, error) {
	ctx, cancel := context.WithTimeout(ctx, pluginDownloadTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL, nil)
	if err != nil {
		return "", 0, fmt.Errorf("download %s: %w", p.URL, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", 0, fmt.Errorf("download: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return "", 0, fmt.Errorf("download %s: %s: %s", p.URL, resp.Status, strings.TrimSpace(string(msg)))
	}
	f, err := os.CreateTemp(e.pluginsDir(), ".download-*.zip")
	if err != nil {
		return "", 0, fmt.Errorf("download: %w", err)
	}
	h := md5.New()
	n, err := io.Copy(io.MultiWriter(f, h), resp.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", 0, fmt.Errorf("download %s: %w", p.URL, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); !strings.EqualFold(got, p.Md5) {
		os.Remove(f.Name())
		return "", 0, fmt.Errorf("download %s: MD5 %s (%d bytes), want %s: the file changed since the plugin was checked", p.URL, got, n, p.Md5)
	}
	return f.Name(), n, nil
}

// unzip extracts regular files and directories of the ZIP at src into dir,
// keeping their permission bits; an entry that would land outside dir, or
// any other kind of entry (a symlink), is an error.
func unzip(src, dir string) error {
	zr, err := zip.OpenReader(src)
	if err != nil {
		return err
	}
	defer zr.Close()
	for _, f := range zr.File {
		name := strings.TrimSuffix(f.Name, "/")
		if !validRelPath(name) {
			return fmt.Errorf("entry %q leaves the plugin directory", f.Name)
		}
		dst := filepath.Join(dir, filepath.FromSlash(name))
		mode := f.Mode()
		switch {
		case mode.IsDir():
			if err := os.MkdirAll(dst, 0o755); err != nil {
				return err
			}
			continue
		case !mode.IsRegular():
			return fmt.Errorf("entry %q is a %s, not a file", f.Name, mode.Type())
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := extract(f, dst, mode.Perm()|0o600); err != nil {
			return fmt.Errorf("entry %q: %w", f.Name, err)
		}
	}
	return nil
}

func extract(f *zip.File, dst string, perm os.FileMode) error {
	rc, err := f.Open()
	if err != nil {
		return err
	}
	defer rc.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, perm)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, rc)
	return errors.Join(err, out.Close(), os.Chmod(dst, perm))
}

// validRelPath reports whether p is a clean relative slash-separated path
// that stays inside the directory it is relative to.
func validRelPath(p string) bool {
	if p == "" || strings.HasPrefix(p, "/") || strings.Contains(p, "\\") || path.Clean(p) != p {
		return false
	}
	return p != "." && p != ".." && !strings.HasPrefix(p, "../")
}

// pluginReason is the crash-loop reason of a connector whose plugin cannot
// be installed. It holds no time, so it is stored only when it changes.
func pluginReason(err error) string {
	return "the worker binary cannot be installed: " + err.Error() + " (retried every " + strconv.Itoa(int(pluginRetry/time.Second)) + "s)"
}
