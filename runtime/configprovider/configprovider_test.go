package configprovider

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func providers(dir string) map[string]string {
	return map[string]string{
		"config.providers":                          "env,file,dir",
		"config.providers.env.class":                EnvClass,
		"config.providers.file.class":               FileClass,
		"config.providers.file.param.allowed.paths": dir,
		"config.providers.dir.class":                DirClass,
	}
}

func TestResolve(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "db.properties"), []byte("user=admin\npassword=hunter2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "key"), []byte("AKIA123"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("FERRY_CP_REGION", "eu-west-1")
	r, err := New(providers(dir))
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "db.properties")
	cfg := map[string]string{
		"url":    "jdbc://${file:" + file + ":user}:${file:" + file + ":password}@db",
		"key":    "${dir:" + dir + ":key}",
		"region": "${env:FERRY_CP_REGION}",
		"plain":  "no references",
	}
	got, red, err := r.Resolve(cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"url": "jdbc://admin:hunter2@db", "key": "AKIA123", "region": "eu-west-1", "plain": "no references"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if s := red.Redact("connect to jdbc://admin:hunter2@db with AKIA123 in eu-west-1"); s != "connect to jdbc://[hidden]:[hidden]@db with [hidden] in [hidden]" {
		t.Errorf("redacted %q", s)
	}
	if cfg["key"] != "${dir:"+dir+":key}" {
		t.Error("Resolve changed its input")
	}
}

func TestResolveErrors(t *testing.T) {
	dir := t.TempDir()
	other := t.TempDir()
	if err := os.WriteFile(filepath.Join(other, "x.properties"), []byte("k=v\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "p.properties"), []byte("k=v\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := New(providers(dir))
	if err != nil {
		t.Fatal(err)
	}
	for ref, want := range map[string]string{
		"${vault:a:b}": `config provider "vault" is not defined`,
		"${file:" + filepath.Join(other, "x.properties") + ":k}":  "is not allowed (allowed.paths)",
		"${file:" + filepath.Join(dir, "p.properties") + ":nope}": "not found",
		"${file:" + filepath.Join(dir, "missing") + ":k}":         "no such file",
		"${env:FERRY_CP_SURELY_UNSET_VAR}":                        "not found",
		"${dir:" + dir + ":../p.properties}":                      "not found",
	} {
		_, _, err := r.Resolve(map[string]string{"secret.key": ref})
		if err == nil || !strings.Contains(err.Error(), "secret.key: "+ref) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want the key, the reference and %q", ref, err, want)
		}
	}
	if _, err := New(map[string]string{"config.providers": "x", "config.providers.x.class": "com.example.Vault"}); err == nil ||
		!strings.Contains(err.Error(), "config.providers.x.class: unknown config provider class") {
		t.Errorf("unknown class: %v", err)
	}
}

func TestEnvAllowlist(t *testing.T) {
	t.Setenv("FERRY_OK", "1")
	t.Setenv("OTHER_SECRET", "2")
	r, err := New(map[string]string{"config.providers": "env", "config.providers.env.class": EnvClass,
		"config.providers.env.param.allowlist.pattern": "FERRY_.*"})
	if err != nil {
		t.Fatal(err)
	}
	if got, _, err := r.Resolve(map[string]string{"a": "${env:FERRY_OK}"}); err != nil || got["a"] != "1" {
		t.Errorf("allowed variable: %v %v", got, err)
	}
	if _, _, err := r.Resolve(map[string]string{"a": "${env:OTHER_SECRET}"}); err == nil {
		t.Error("a variable outside the allowlist was resolved")
	}
}
