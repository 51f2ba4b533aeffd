// Package secret makes and checks the project's bearer tokens and seals IdP
// credentials at rest.
//
// Tokens are 256 random bits. Only their SHA-256 is stored: the input is
// already high-entropy, so a slow password hash would add latency to every
// request without adding safety. Lookups go by hash and the final comparison
// is constant-time.
package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Token prefixes tell a reader which kind of token leaked, and let the
// admin API reject a SCIM token before any lookup.
const (
	PrefixAdmin  = "ssa_"
	PrefixSCIM   = "sst_"
	PrefixInvite = "ssi_"
)

// NewToken returns a fresh random token with the given prefix.
func NewToken(prefix string) string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		// crypto/rand never fails on supported platforms; a failure here
		// means the process cannot make secrets at all.
		panic(fmt.Sprintf("secret: reading random bytes: %v", err))
	}
	return prefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// Hash returns the hex SHA-256 of a token, the form tokens are stored in.
func Hash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// Equal reports whether token hashes to storedHash, in constant time.
func Equal(token, storedHash string) bool {
	h := Hash(token)
	return subtle.ConstantTimeCompare([]byte(h), []byte(storedHash)) == 1
}

// Box seals and opens small secrets (IdP credentials) with AES-256-GCM.
type Box struct {
	aead cipher.AEAD
}

// ErrOpen is returned when a sealed value cannot be decrypted: a wrong key or
// tampered data. It never carries the data itself.
var ErrOpen = errors.New("secret: cannot decrypt sealed value (wrong SCIMSYNC_SECRET_KEY?)")

// NewBox makes a Box from a 32-byte key.
func NewBox(key []byte) (*Box, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("secret: key must be 32 bytes, got %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("secret: new cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("secret: new gcm: %w", err)
	}
	return &Box{aead: aead}, nil
}

// Seal encrypts plaintext; additional binds the ciphertext to its owner (an
// organization id), so a sealed value copied to another row does not open.
func (b *Box) Seal(plaintext, additional []byte) []byte {
	nonce := make([]byte, b.aead.NonceSize(), b.aead.NonceSize()+len(plaintext)+b.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		panic(fmt.Sprintf("secret: reading random bytes: %v", err))
	}
	return b.aead.Seal(nonce, nonce, plaintext, additional)
}

// Open decrypts what Seal produced with the same additional data.
func (b *Box) Open(sealed, additional []byte) ([]byte, error) {
	n := b.aead.NonceSize()
	if len(sealed) < n {
		return nil, ErrOpen
	}
	out, err := b.aead.Open(nil, sealed[:n], sealed[n:], additional)
	if err != nil {
		return nil, ErrOpen
	}
	return out, nil
}

// ParseKey decodes a key given as 64 hex characters or as base64 of 32 bytes.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if k, err := hex.DecodeString(s); err == nil && len(k) == 32 {
		return k, nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(s); err == nil && len(k) == 32 {
			return k, nil
		}
	}
	return nil, errors.New("must be 32 bytes as 64 hex characters or base64")
}

// LoadOrCreateKeyFile reads the key stored at path, or creates one there
// (mode 0600) when the file does not exist. created reports the latter.
func LoadOrCreateKeyFile(path string) (key []byte, created bool, err error) {
	b, err := os.ReadFile(path)
	if err == nil {
		k, perr := ParseKey(string(b))
		if perr != nil {
			return nil, false, fmt.Errorf("secret: key file %s: %w", path, perr)
		}
		return k, false, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, false, fmt.Errorf("secret: reading key file: %w", err)
	}
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return nil, false, fmt.Errorf("secret: generating key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, fmt.Errorf("secret: creating key directory: %w", err)
	}
	// O_EXCL: two processes starting together must not both write a key.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return LoadOrCreateKeyFile(path)
	}
	if err != nil {
		return nil, false, fmt.Errorf("secret: creating key file: %w", err)
	}
	if _, err := f.WriteString(hex.EncodeToString(k) + "\n"); err != nil {
		f.Close()
		return nil, false, fmt.Errorf("secret: writing key file: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, false, fmt.Errorf("secret: writing key file: %w", err)
	}
	return k, true, nil
}
