package eam

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// KeyBits is the size of the RSA keys GenerateKey makes.
const KeyBits = 3072

// SigningKey is one of hashcall's token-signing keys: an RSA private key
// and the certificate chain published with it in the JWKS's x5c. Its KeyID
// is the RFC 7638 JWK thumbprint (SHA-256, base64url) of the public key, so
// the same key always has the same kid.
type SigningKey struct {
	KeyID string
	Key   *rsa.PrivateKey
	Certs []*x509.Certificate
}

// ErrKeyFile is wrapped by the errors of ParseSigningKey.
var ErrKeyFile = errors.New("signing key file")

// ParseSigningKey reads a PEM file holding one RSA private key (PKCS #8 or
// PKCS #1) and its certificate, optionally followed by the rest of its chain:
// what `hashcall keys generate` writes.
func ParseSigningKey(data []byte) (*SigningKey, error) {
	var (
		key   *rsa.PrivateKey
		certs []*x509.Certificate
	)
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		switch b.Type {
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%w: %w", ErrKeyFile, err)
			}
			rk, ok := k.(*rsa.PrivateKey)
			if !ok {
				return nil, fmt.Errorf("%w: want an RSA key (RS256), got %T", ErrKeyFile, k)
			}
			key = rk
		case "RSA PRIVATE KEY":
			k, err := x509.ParsePKCS1PrivateKey(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%w: %w", ErrKeyFile, err)
			}
			key = k
		case "CERTIFICATE":
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%w: %w", ErrKeyFile, err)
			}
			certs = append(certs, c)
		}
	}
	switch {
	case key == nil:
		return nil, fmt.Errorf("%w: no PEM PRIVATE KEY block", ErrKeyFile)
	case key.N.BitLen() < 2048:
		return nil, fmt.Errorf("%w: the RSA key has %d bits, want at least 2048", ErrKeyFile, key.N.BitLen())
	case len(certs) == 0:
		return nil, fmt.Errorf("%w: no PEM CERTIFICATE block (the JWKS publishes it as x5c)", ErrKeyFile)
	}
	pub, ok := certs[0].PublicKey.(*rsa.PublicKey)
	if !ok || !pub.Equal(&key.PublicKey) {
		return nil, fmt.Errorf("%w: the first certificate is not the private key's", ErrKeyFile)
	}
	kid, err := thumbprint(&key.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKeyFile, err)
	}
	return &SigningKey{KeyID: kid, Key: key, Certs: certs}, nil
}

// LoadSigningKey reads ParseSigningKey's format from path.
func LoadSigningKey(path string) (*SigningKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKeyFile, err)
	}
	k, err := ParseSigningKey(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

func thumbprint(pub *rsa.PublicKey) (string, error) {
	jwk := jose.JSONWebKey{Key: pub}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// GenerateKey makes an RSA 3072 key and a self-signed certificate for it
// (common name cn, valid from now for validity) and returns both as PEM,
// the key first: the file format of ParseSigningKey.
func GenerateKey(random io.Reader, cn string, now time.Time, validity time.Duration) ([]byte, error) {
	if random == nil {
		random = rand.Reader
	}
	key, err := rsa.GenerateKey(random, KeyBits)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(random, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	ski := sha256.Sum256(x509.MarshalPKCS1PublicKey(&key.PublicKey))
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		SubjectKeyId:          ski[:20],
	}
	der, err := x509.CreateCertificate(random, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	p8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	out := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8})
	out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	return out, nil
}

// JWKS returns the key set to publish: every key's public half with kid,
// use "sig", alg RS256 and its certificate chain (x5c).
func JWKS(keys []*SigningKey) jose.JSONWebKeySet {
	var set jose.JSONWebKeySet
	for _, k := range keys {
		s1 := sha1.Sum(k.Certs[0].Raw) //nolint:gosec // x5t is defined as the SHA-1 thumbprint (RFC 7517 4.8)
		s256 := sha256.Sum256(k.Certs[0].Raw)
		set.Keys = append(set.Keys, jose.JSONWebKey{
			Key:          &k.Key.PublicKey,
			KeyID:        k.KeyID,
			Algorithm:    string(jose.RS256),
			Use:          "sig",
			Certificates: k.Certs,
			// x5t and x5t#S256 as Entra's own keys carry them.
			CertificateThumbprintSHA1:   s1[:],
			CertificateThumbprintSHA256: s256[:],
		})
	}
	return set
}
