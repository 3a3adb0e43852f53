package tlsroute

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vaurien-go/vaurien/pkg/filewatch"
)

// authority is a CA that signs the certificates a route serves.
type authority struct {
	cert *x509.Certificate
	key  crypto.Signer
	pem  []byte // the certificate, for ca_out
}

// newAuthority generates a CA. ECDSA P-256 keys make a generation take
// well under a millisecond, so that a start does not wait on RSA.
func newAuthority() (*authority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate CA key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{Organization: []string{"vaurien"}, CommonName: "vaurien CA " + now.UTC().Format(time.RFC3339)},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(5, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("generate CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &authority{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

// loadAuthority reads a CA's certificate and key from PEM files.
func loadAuthority(certFile, keyFile string) (*authority, error) {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load CA %s: %w", certFile, err)
	}
	signer, ok := pair.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("load CA %s: its key cannot sign", certFile)
	}
	return &authority{cert: pair.Leaf, key: signer}, nil
}

// authorities keeps the CA generated for each ca_out file, so that a
// reload that rebuilds a route keeps the CA its clients already trust.
var authorities sync.Map // ca_out path → *authority

// generated returns the CA for caOut, generating it the first time.
func generated(caOut string) (*authority, error) {
	if caOut == "" {
		return newAuthority()
	}
	abs, err := filepath.Abs(caOut)
	if err != nil {
		return nil, fmt.Errorf("ca_out %s: %w", caOut, err)
	}
	if a, ok := authorities.Load(abs); ok {
		return a.(*authority), nil
	}
	a, err := newAuthority()
	if err != nil {
		return nil, err
	}
	actual, _ := authorities.LoadOrStore(abs, a)
	return actual.(*authority), nil
}

// writeCA writes the CA's certificate to path, replacing the file whole so
// that a client never reads half of it.
func writeCA(path string, a *authority) error {
	if old, err := os.ReadFile(path); err == nil && string(old) == string(a.pem) {
		return nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".vaurien-ca-*")
	if err != nil {
		return fmt.Errorf("write ca_out %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(a.pem); err != nil {
		tmp.Close()
		return fmt.Errorf("write ca_out %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("write ca_out %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write ca_out %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write ca_out %s: %w", path, err)
	}
	return nil
}

// leaf makes a server certificate for names, valid from notBefore to
// notAfter, signed by a; a nil a makes it self-signed.
func leaf(a *authority, names []string, notBefore, notAfter time.Time) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("generate key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{Organization: []string{"vaurien"}, CommonName: names[0]},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	parent, signer := tmpl, crypto.Signer(key)
	if a != nil {
		parent, signer = a.cert, a.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), signer)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("generate certificate: %w", err)
	}
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	cert.Leaf, err = x509.ParseCertificate(der)
	return cert, err
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	return n
}

// keyPair is a certificate and key loaded from files and loaded again
// when either changes. A change that does not load (a key written before
// its certificate, say) keeps the pair in force.
type keyPair struct {
	certFile, keyFile string
	cur               atomic.Pointer[tls.Certificate]
}

func loadKeyPair(certFile, keyFile string) (*keyPair, error) {
	k := &keyPair{certFile: certFile, keyFile: keyFile}
	if err := k.load(); err != nil {
		return nil, err
	}
	return k, nil
}

func (k *keyPair) load() error {
	c, err := tls.LoadX509KeyPair(k.certFile, k.keyFile)
	if err != nil {
		return fmt.Errorf("load certificate %s with key %s: %w", k.certFile, k.keyFile, err)
	}
	k.cur.Store(&c)
	return nil
}

// watch loads the pair again after each change of its files until ctx
// ends, and reports each load to loaded (nil when it took).
func (k *keyPair) watch(ctx context.Context, loaded func(error)) error {
	var ws []*filewatch.Watcher
	for _, f := range []string{k.certFile, k.keyFile} {
		w, err := filewatch.New(f, filewatch.DefaultDebounce)
		if err != nil {
			for _, w := range ws {
				w.Close()
			}
			return fmt.Errorf("watch %s: %w", f, err)
		}
		ws = append(ws, w)
	}
	go func() {
		defer func() {
			for _, w := range ws {
				w.Close()
			}
		}()
		for {
			select {
			case <-ctx.Done():
				return
			case <-ws[0].C:
			case <-ws[1].C:
			case <-ws[0].Errors:
				continue
			case <-ws[1].Errors:
				continue
			}
			loaded(k.load())
		}
	}()
	return nil
}

// errNoCert would only come from a pair that never loaded.
var errNoCert = errors.New("no certificate loaded")

func (k *keyPair) get() (*tls.Certificate, error) {
	if c := k.cur.Load(); c != nil {
		return c, nil
	}
	return nil, errNoCert
}
