package secret

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTokenHashEqual(t *testing.T) {
	a, b := NewToken(PrefixSCIM), NewToken(PrefixSCIM)
	if a == b {
		t.Fatal("two tokens are equal")
	}
	if !strings.HasPrefix(a, PrefixSCIM) || len(a) < 40 {
		t.Fatalf("token %q lacks prefix or entropy", a)
	}
	h := Hash(a)
	if strings.Contains(h, a) || len(h) != 64 {
		t.Fatalf("hash %q is not a hex sha256", h)
	}
	if !Equal(a, h) {
		t.Error("Equal(token, Hash(token)) = false")
	}
	if Equal(b, h) {
		t.Error("Equal(other, Hash(token)) = true")
	}
	if Equal(a, "") {
		t.Error("Equal against empty hash = true")
	}
}

func TestBox(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	box, err := NewBox(key)
	if err != nil {
		t.Fatal(err)
	}
	sealed := box.Seal([]byte(`{"apiToken":"s3cret"}`), []byte("org-1"))
	if bytes.Contains(sealed, []byte("s3cret")) {
		t.Fatal("sealed value contains the plaintext")
	}
	got, err := box.Open(sealed, []byte("org-1"))
	if err != nil || string(got) != `{"apiToken":"s3cret"}` {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if _, err := box.Open(sealed, []byte("org-2")); err != ErrOpen {
		t.Errorf("Open with other org = %v, want ErrOpen", err)
	}
	other, _ := NewBox(bytes.Repeat([]byte{8}, 32))
	if _, err := other.Open(sealed, []byte("org-1")); err != ErrOpen {
		t.Errorf("Open with other key = %v, want ErrOpen", err)
	}
	if _, err := box.Open([]byte{1, 2}, nil); err != ErrOpen {
		t.Errorf("Open of short input = %v, want ErrOpen", err)
	}
	if _, err := NewBox([]byte("short")); err == nil {
		t.Error("NewBox accepted a short key")
	}
}

func TestParseKey(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{strings.Repeat("ab", 32), true},
		{"  " + strings.Repeat("ab", 32) + "\n", true},
		{"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", true},
		{"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8", true},
		{"abc", false},
		{strings.Repeat("ab", 31), false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := ParseKey(tt.in)
			if (err == nil) != tt.want {
				t.Errorf("ParseKey(%q) error = %v, want ok=%v", tt.in, err, tt.want)
			}
		})
	}
}

func TestLoadOrCreateKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "secret.key")
	k1, created, err := LoadOrCreateKeyFile(path)
	if err != nil || !created || len(k1) != 32 {
		t.Fatalf("first load = %x, %v, %v", k1, created, err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode = %v, want 0600", st.Mode().Perm())
	}
	k2, created, err := LoadOrCreateKeyFile(path)
	if err != nil || created || !bytes.Equal(k1, k2) {
		t.Fatalf("second load = %x, %v, %v; want the same key", k2, created, err)
	}
	if err := os.WriteFile(path, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreateKeyFile(path); err == nil {
		t.Error("a corrupt key file was accepted")
	}
}
