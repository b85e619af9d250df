package radius

import (
	"bytes"
	"testing"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/vendors/microsoft"
)

// seedAnswer is an upstream Access-Accept as FreeRADIUS sends after
// MS-CHAPv2: Class, MS-MPPE keys, Tunnel-Password, our Proxy-State last.
func seedAnswer(tb testing.TB) []byte {
	p := radius.New(radius.CodeAccessAccept, upstreamSecret)
	_ = rfc2865.Class_Set(p, []byte("class"))
	_ = microsoft.MSMPPESendKey_Add(p, mppeKey)
	_ = microsoft.MSMPPERecvKey_Add(p, mppeKey[:16])
	tp, _ := radius.NewTunnelPassword([]byte("tunnel"), []byte{0x80, 1}, upstreamSecret, p.Authenticator[:])
	p.Attributes.Add(typeTunnelPassword, append(radius.Attribute{1}, tp...))
	p.Attributes.Add(typeProxyState, []byte("ours"))
	b, err := encode(p, true)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// FuzzUpstreamAnswer feeds arbitrary upstream answers through the decoding
// the front does on them: parse, Proxy-State removal, key re-encryption,
// encoding for the NAS. Nothing may panic; keys re-encrypted there and back
// must come out as they went in.
func FuzzUpstreamAnswer(f *testing.F) {
	f.Add(seedAnswer(f))
	f.Add([]byte{2, 0, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := parse(b)
		if err != nil {
			return
		}
		_ = stripProxyState(p, []byte("ours"))
		var a1, a2 [16]byte
		a2[0] = 1
		orig := cloneAttrs(p.Attributes)
		if err := reencryptKeys(p.Attributes, upstreamSecret, a1, nasSecret, a2); err != nil {
			return
		}
		back := cloneAttrs(p.Attributes)
		if err := reencryptKeys(back, nasSecret, a2, upstreamSecret, a1); err != nil {
			t.Fatalf("re-encrypted keys do not decrypt: %v", err)
		}
		for i := range back {
			if !sameKey(orig[i], back[i]) {
				t.Fatalf("attribute %d: %x, back %x", i, orig[i].Attribute, back[i].Attribute)
			}
		}
		p.Secret = nasSecret
		out, err := encode(p, true)
		if err != nil {
			return
		}
		if err := checkResponse(out, &p.Authenticator, nasSecret, true); err != nil {
			t.Fatalf("our own answer does not check: %v", err)
		}
	})
}

// sameKey compares attributes by their decrypted meaning: a key's padding
// may shrink to the minimum on re-encryption.
func sameKey(a, b *radius.AVP) bool {
	if a.Type != b.Type {
		return false
	}
	if bytes.Equal(a.Attribute, b.Attribute) {
		return true
	}
	var zero [16]byte
	dec := func(v radius.Attribute) []byte {
		plain, _, err := radius.TunnelPassword(v, upstreamSecret, zero[:])
		if err != nil {
			return nil
		}
		return plain
	}
	switch a.Type {
	case typeTunnelPassword:
		return len(a.Attribute) > 0 && len(b.Attribute) > 0 && bytes.Equal(dec(a.Attribute[1:]), dec(b.Attribute[1:]))
	case typeVendorSpecific:
		return true // checked by TestProxy and the interop tests with real keys
	}
	return false
}

// FuzzRequest feeds arbitrary datagrams through the checks of a request
// (parse, Message-Authenticator) and the re-hiding of User-Password.
func FuzzRequest(f *testing.F) {
	f.Add(request(f, 1, "alice", "right", true))
	f.Add(request(f, 2, "bob", "", false))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := parse(b)
		if err != nil {
			return
		}
		_ = checkMessageAuth(b, nil, nasSecret)
		attrs := cloneAttrs(p.Attributes)
		if err := rehideUserPassword(attrs, p.Authenticator, nasSecret, upstreamSecret); err != nil {
			return
		}
		if err := rehideUserPassword(attrs, p.Authenticator, upstreamSecret, nasSecret); err != nil {
			t.Fatal(err)
		}
		for i := range attrs {
			if !bytes.Equal(attrs[i].Attribute, p.Attributes[i].Attribute) {
				t.Fatalf("User-Password changed on the way there and back")
			}
		}
	})
}
