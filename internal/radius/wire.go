package radius

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2869"
)

// Attribute types and codes this package handles itself.
const (
	typeUserPassword         = rfc2865.UserPassword_Type         // 2, RFC 2865 §5.2
	typeVendorSpecific       = rfc2865.VendorSpecific_Type       // 26
	typeProxyState           = rfc2865.ProxyState_Type           // 33, RFC 2865 §5.33
	typeTunnelPassword       = radius.Type(69)                   // RFC 2868 §3.5
	typeEAPMessage           = rfc2869.EAPMessage_Type           // 79
	typeMessageAuthenticator = rfc2869.MessageAuthenticator_Type // 80, RFC 3579 §3.2

	vendorMicrosoft = 311 // RFC 2548
	msMPPESendKey   = 16  // RFC 2548 §2.4.2
	msMPPERecvKey   = 17  // RFC 2548 §2.4.3
)

// Errors of packet decoding; matched with errors.Is.
var (
	ErrMalformed      = errors.New("radius: malformed packet")
	ErrNoMessageAuth  = errors.New("radius: no Message-Authenticator")
	ErrBadMessageAuth = errors.New("radius: wrong Message-Authenticator")
	ErrBadAuth        = errors.New("radius: wrong Response Authenticator")
)

// parse decodes a packet's header and attributes (RFC 2865 §3, §5). Bytes
// past the Length field are ignored, as §3 says.
func parse(b []byte) (*radius.Packet, error) {
	p, err := radius.Parse(b, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if n := len(p.Attributes); n > maxAttributes {
		return nil, fmt.Errorf("%w: %d attributes", ErrMalformed, n)
	}
	return p, nil
}

// maxAttributes bounds the attributes of one packet (4096 bytes hold at
// most 2048 empty ones; no real packet has more than a few dozen).
const maxAttributes = 256

// messageAuth computes the Message-Authenticator of the encoded packet b
// (RFC 3579 §3.2): HMAC-MD5 keyed with secret over the packet with the
// attribute's value zeroed and, for responses, the Request Authenticator of
// the request (reqAuth) in place of the Response Authenticator. off is the
// offset of the attribute's value in b. b is not changed.
func messageAuth(b []byte, off int, reqAuth *[16]byte, secret []byte) [16]byte {
	var zero [16]byte
	mac := hmac.New(md5.New, secret)
	mac.Write(b[:4])
	if reqAuth != nil {
		mac.Write(reqAuth[:])
	} else {
		mac.Write(b[4:20])
	}
	mac.Write(b[20:off])
	mac.Write(zero[:])
	mac.Write(b[off+16:])
	var out [16]byte
	mac.Sum(out[:0])
	return out
}

// findMessageAuth returns the offset of the Message-Authenticator's value
// in the encoded packet b, or -1. A Message-Authenticator whose length is
// not 18 makes the packet malformed.
func findMessageAuth(b []byte) (int, error) {
	n := int(binary.BigEndian.Uint16(b[2:4]))
	found := -1
	for i := 20; i+2 <= n; {
		l := int(b[i+1])
		if l < 2 || i+l > n {
			return -1, ErrMalformed
		}
		if radius.Type(b[i]) == typeMessageAuthenticator {
			if l != 18 || found >= 0 {
				return -1, fmt.Errorf("%w: Message-Authenticator of length %d or twice", ErrMalformed, l)
			}
			found = i + 2
		}
		i += l
	}
	return found, nil
}

// checkMessageAuth verifies the Message-Authenticator of the encoded packet
// b (a request when reqAuth is nil, else a response to a request with that
// authenticator). It returns ErrNoMessageAuth when there is none.
func checkMessageAuth(b []byte, reqAuth *[16]byte, secret []byte) error {
	off, err := findMessageAuth(b)
	if err != nil {
		return err
	}
	if off < 0 {
		return ErrNoMessageAuth
	}
	want := messageAuth(b, off, reqAuth, secret)
	if subtle.ConstantTimeCompare(want[:], b[off:off+16]) != 1 {
		return ErrBadMessageAuth
	}
	return nil
}

// encode encodes p with a Message-Authenticator (replacing p's own, or
// first when it has none, as draft-ietf-radext-deprecating-radius and the
// BlastRADIUS advisories recommend) and, for a response to a request with
// authenticator reqAuth, the Response Authenticator (RFC 2865 §3). p's
// Authenticator is the Request Authenticator for requests and for
// responses alike.
func encode(p *radius.Packet, response bool) ([]byte, error) {
	has := false
	for _, a := range p.Attributes {
		if a.Type == typeMessageAuthenticator {
			if has {
				return nil, fmt.Errorf("%w: two Message-Authenticators", ErrMalformed)
			}
			has = true
			a.Attribute = make(radius.Attribute, 16)
		}
	}
	if !has {
		p.Attributes = append(radius.Attributes{{Type: typeMessageAuthenticator, Attribute: make(radius.Attribute, 16)}}, p.Attributes...)
	}
	b, err := p.MarshalBinary()
	if err != nil {
		return nil, err
	}
	off, err := findMessageAuth(b)
	if err != nil {
		return nil, err
	}
	mac := messageAuth(b, off, nil, p.Secret)
	copy(b[off:], mac[:])
	for _, a := range p.Attributes {
		if a.Type == typeMessageAuthenticator {
			copy(a.Attribute, mac[:])
		}
	}
	if response {
		h := md5.New()
		h.Write(b[:4])
		h.Write(p.Authenticator[:])
		h.Write(b[20:])
		h.Write(p.Secret)
		h.Sum(b[4:4:20])
	}
	return b, nil
}

// checkResponse verifies a response's Response Authenticator (RFC 2865 §3)
// and, when present or required, its Message-Authenticator, against the
// request's authenticator.
func checkResponse(b []byte, reqAuth *[16]byte, secret []byte, requireMA bool) error {
	if len(b) < 20 || int(binary.BigEndian.Uint16(b[2:4])) > len(b) {
		return ErrMalformed
	}
	b = b[:binary.BigEndian.Uint16(b[2:4])]
	h := md5.New()
	h.Write(b[:4])
	h.Write(reqAuth[:])
	h.Write(b[20:])
	h.Write(secret)
	var sum [16]byte
	h.Sum(sum[:0])
	if subtle.ConstantTimeCompare(sum[:], b[4:20]) != 1 {
		return ErrBadAuth
	}
	err := checkMessageAuth(b, reqAuth, secret)
	if errors.Is(err, ErrNoMessageAuth) && !requireMA {
		return nil
	}
	return err
}

// hide XORs a User-Password value with the MD5 stream of RFC 2865 §5.2
// (secret, authenticator, then each previous cipher block), encrypting when
// enc and decrypting otherwise. The padding is kept, so the length stays.
func hide(v []byte, secret []byte, auth [16]byte, enc bool) ([]byte, error) {
	if len(v) < 16 || len(v) > 128 || len(v)%16 != 0 {
		return nil, fmt.Errorf("%w: User-Password of length %d", ErrMalformed, len(v))
	}
	out := make([]byte, len(v))
	prev := auth[:]
	var b [16]byte
	for i := 0; i < len(v); i += 16 {
		h := md5.New()
		h.Write(secret)
		h.Write(prev)
		h.Sum(b[:0])
		for j := range 16 {
			out[i+j] = v[i+j] ^ b[j]
		}
		if enc {
			prev = out[i : i+16]
		} else {
			prev = v[i : i+16]
		}
	}
	return out, nil
}

// rehideUserPassword re-hides every User-Password of attrs from secret
// from to secret to, for the same Request Authenticator (RFC 2865 §5.2: a
// proxy decrypts with one shared secret and encrypts with the next).
func rehideUserPassword(attrs radius.Attributes, auth [16]byte, from, to []byte) error {
	for _, a := range attrs {
		if a.Type != typeUserPassword {
			continue
		}
		plain, err := hide(a.Attribute, from, auth, false)
		if err != nil {
			return err
		}
		if a.Attribute, err = hide(plain, to, auth, true); err != nil {
			return err
		}
	}
	return nil
}

// reencryptKeys re-encrypts, in a response, the attributes encrypted with
// the shared secret and the Request Authenticator: MS-MPPE-Send-Key and
// MS-MPPE-Recv-Key (RFC 2548 §2.4.2–2.4.3) and Tunnel-Password (RFC 2868
// §3.5), from the upstream's secret and request authenticator to the NAS's.
// Each keeps its salt and its place; everything else is left as it is.
func reencryptKeys(attrs radius.Attributes, fromSecret []byte, fromAuth [16]byte, toSecret []byte, toAuth [16]byte) error {
	for _, a := range attrs {
		switch a.Type {
		case typeTunnelPassword:
			// Tag (1 octet), then Salt and the encrypted string.
			if len(a.Attribute) < 1 {
				return fmt.Errorf("%w: empty Tunnel-Password", ErrMalformed)
			}
			v, err := resalt(a.Attribute[1:], fromSecret, fromAuth, toSecret, toAuth)
			if err != nil {
				return fmt.Errorf("Tunnel-Password: %w", err)
			}
			a.Attribute = append(radius.Attribute{a.Attribute[0]}, v...)
		case typeVendorSpecific:
			if err := reencryptVSA(a, fromSecret, fromAuth, toSecret, toAuth); err != nil {
				return err
			}
		}
	}
	return nil
}

// reencryptVSA re-encrypts the MS-MPPE keys inside one Vendor-Specific
// attribute (RFC 2865 §5.26: Vendor-Id, then vendor attributes of type,
// length, value; RFC 2548 §2 uses that layout). Other vendors' attributes
// are not touched.
func reencryptVSA(a *radius.AVP, fromSecret []byte, fromAuth [16]byte, toSecret []byte, toAuth [16]byte) error {
	v := a.Attribute
	if len(v) < 4 || binary.BigEndian.Uint32(v[:4]) != vendorMicrosoft {
		return nil
	}
	out := append(radius.Attribute(nil), v[:4]...)
	for i := 4; i < len(v); {
		if i+2 > len(v) || v[i+1] < 2 || i+int(v[i+1]) > len(v) {
			return fmt.Errorf("%w: Microsoft vendor attribute", ErrMalformed)
		}
		typ, l := v[i], int(v[i+1])
		val := v[i+2 : i+l]
		if typ == msMPPESendKey || typ == msMPPERecvKey {
			nv, err := resalt(val, fromSecret, fromAuth, toSecret, toAuth)
			if err != nil {
				return fmt.Errorf("MS-MPPE key: %w", err)
			}
			val = nv
		}
		out = append(out, typ, byte(2+len(val)))
		out = append(out, val...)
		i += l
	}
	a.Attribute = out
	return nil
}

// resalt decrypts a salt-encrypted value (RFC 2548 §2.4.2: Salt, then the
// key length, key and padding encrypted with MD5(secret + Request
// Authenticator + Salt) and the chain of cipher blocks) and encrypts it
// again for the other secret, with the same salt.
func resalt(v []byte, fromSecret []byte, fromAuth [16]byte, toSecret []byte, toAuth [16]byte) ([]byte, error) {
	plain, salt, err := radius.TunnelPassword(radius.Attribute(v), fromSecret, fromAuth[:])
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	out, err := radius.NewTunnelPassword(plain, salt, toSecret, toAuth[:])
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return out, nil
}
