// An independent reader of medshare certificates: Go's golang.org/x/mod/sumdb/note (the signed
// note implementation of the Go checksum database) opens the pinned certificate vector with an
// RSA-PSS-SHA256 verifier for the authority's key, under medshare's key id rule
// (SHA-256(name || 0x0A || 0xFF || "rsa-pss-sha256\n" || SPKI)[:4]).
package gonote

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base32"
	"encoding/binary"
	"encoding/pem"
	"os"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
)

type rsaVerifier struct {
	name string
	id   uint32
	key  *rsa.PublicKey
}

func (v *rsaVerifier) Name() string    { return v.name }
func (v *rsaVerifier) KeyHash() uint32 { return v.id }
func (v *rsaVerifier) Verify(msg, sig []byte) bool {
	h := sha256.Sum256(msg)
	return rsa.VerifyPSS(v.key, crypto.SHA256, h[:], sig, &rsa.PSSOptions{SaltLength: 32, Hash: crypto.SHA256}) == nil
}

// The medshare identity id of an SPKI: multibase base32 (lower, no padding) of the sha2-256
// multihash of the DER.
func identityID(spki []byte) string {
	h := sha256.Sum256(spki)
	mh := append([]byte{0x12, 0x20}, h[:]...)
	return "b" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(mh))
}

func verifier(t *testing.T) *rsaVerifier {
	raw, err := os.ReadFile("../../core/testdata/keys/authority-2048.pem")
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(raw)
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	pub := &key.(*rsa.PrivateKey).PublicKey
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	name := identityID(spki)
	h := sha256.New()
	h.Write([]byte(name))
	h.Write([]byte{0x0a, 0xff})
	h.Write([]byte("rsa-pss-sha256\n"))
	h.Write(spki)
	return &rsaVerifier{name, binary.BigEndian.Uint32(h.Sum(nil)), pub}
}

func TestGoOpensAMedshareCertificate(t *testing.T) {
	msg, err := os.ReadFile("../../core/testdata/vectors/certificate-v2.note")
	if err != nil {
		t.Fatal(err)
	}
	v := verifier(t)
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		t.Fatalf("note.Open: %v", err)
	}
	if len(n.Sigs) != 1 || n.Sigs[0].Name != v.name {
		t.Fatalf("signatures %+v", n.Sigs)
	}
	lines := strings.Split(n.Text, "\n")
	if !strings.HasPrefix(lines[0], "medshare/b") || lines[1] != "1" || !strings.HasPrefix(lines[3], "block 1 ") {
		t.Fatalf("checkpoint text %q", n.Text)
	}
	// One changed byte of the text: the signature no longer verifies.
	bad := []byte(strings.Replace(string(msg), "\n1\n", "\n2\n", 1))
	if _, err := note.Open(bad, note.VerifierList(v)); err == nil {
		t.Fatal("a tampered note opened")
	}
}
