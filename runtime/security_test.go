package runtime

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/ferryhq/ferry/jobs"
)

// selfSigned returns a server certificate for 127.0.0.1 and its PEM.
func selfSigned(t *testing.T) (tls.Certificate, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kfake"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// A sink consumes from a cluster that requires TLS and SCRAM, configured
// with Kafka's property names in the worker configuration.
func TestSASLSSL(t *testing.T) {
	cert, certPEM := selfSigned(t)
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "sec"),
		kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", "ferry", "s3cr3t"),
		kfake.TLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	addr := c.ListenAddrs()[0]
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	cl := newClient(t, addr, manualPartitioner(), kgo.DialTLSConfig(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}),
		kgo.SASL(scram.Auth{User: "ferry", Pass: "s3cr3t"}.AsSha512Mechanism()))
	produce(t, cl, "sec", 0, "a", "b")

	trust := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(trust, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	spec := testSpec("sec", addr, 1, 1, map[string]string{"topics": "sec"})
	spec.WorkerProperties = map[string]string{
		"security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512",
		"sasl.jaas.config":        `org.apache.kafka.common.security.scram.ScramLoginModule required username="ferry" password="s3cr3t";`,
		"ssl.truststore.type":     "PEM",
		"ssl.truststore.location": trust,
	}
	w := startWorker(t, spec, 0, testRegistry(t, rec))
	eventually(t, 20*time.Second, "2 records over SASL_SSL", func() bool { return len(rec.deliveries()) == 2 })
	w.stop(t)
}

func TestSecurityProperties(t *testing.T) {
	for name, tc := range map[string]struct {
		props map[string]string
		err   string
	}{
		"plaintext default": {nil, ""},
		"iam":               {map[string]string{"security.protocol": "SASL_SSL", "sasl.mechanism": "AWS_MSK_IAM"}, ""},
		"plain":             {map[string]string{"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN", "sasl.jaas.config": `x required username="u" password="p";`}, ""},
		"bad protocol":      {map[string]string{"security.protocol": "TLS"}, "security.protocol"},
		"no mechanism":      {map[string]string{"security.protocol": "SASL_SSL"}, "sasl.mechanism is required"},
		"gssapi":            {map[string]string{"security.protocol": "SASL_SSL", "sasl.mechanism": "GSSAPI"}, "not supported"},
		"no credentials":    {map[string]string{"security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-256"}, "username"},
		"jks trust store":   {map[string]string{"security.protocol": "SSL", "ssl.truststore.location": "/x.jks"}, "PEM"},
	} {
		spec := &jobs.WorkerSpec{WorkerProperties: tc.props}
		_, err := securityOpts(spec)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", name, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: got %v, want an error about %q", name, err, tc.err)
		case err != nil && strings.Contains(err.Error(), "p\""):
			t.Errorf("%s: error leaks the password: %v", name, err)
		}
	}
	// A consumer.override on the connector wins over the worker's setting.
	spec := &jobs.WorkerSpec{
		Config:           map[string]string{"consumer.override.security.protocol": "PLAINTEXT"},
		WorkerProperties: map[string]string{"security.protocol": "BOGUS"},
	}
	if _, err := securityOpts(spec); err != nil {
		t.Errorf("override ignored: %v", err)
	}
}
