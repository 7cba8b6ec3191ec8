package jobs

import "strings"

// Redacted replaces secret values when a configuration is returned.
const Redacted = "********"

var secretWords = []string{"password", "secret", "token", "credential", "passphrase", "private"}

// IsSecretKey reports whether a configuration key looks like it holds a
// secret: it names a password, secret, token, credential or private key, or
// ends in "key" in a way that names key material (e.g.
// "aws.secret.access.key", "ssl.key.password", "s3.sse.customer.key"), but not
// "key.converter" or "store.kafka.keys".
func IsSecretKey(k string) bool {
	l := strings.ToLower(k)
	for _, w := range secretWords {
		if strings.Contains(l, w) {
			return true
		}
	}
	if strings.Contains(l, "converter") {
		return false
	}
	for _, suf := range []string{".key", "_key", "accesskey", "apikey", "api.key", ".key.id", "access.key.id"} {
		if strings.HasSuffix(l, suf) {
			return true
		}
	}
	return false
}

// RedactConfig returns a copy of cfg with secret-looking values replaced.
// References to config providers (${...}) are not secrets and are kept.
func RedactConfig(cfg map[string]string) map[string]string {
	if cfg == nil {
		return nil
	}
	out := make(map[string]string, len(cfg))
	for k, v := range cfg {
		if IsSecretKey(k) && !(strings.HasPrefix(v, "${") && strings.HasSuffix(v, "}")) {
			v = Redacted
		}
		out[k] = v
	}
	return out
}
