// Package directory finds a user's phone number: in a CSV file the
// organisation exports, or in LDAP (Active Directory, OpenLDAP). The doors
// in front of the verify service (the Entra page, the RADIUS front) ask it
// whose phone to call; numbers still pass the toll-fraud policy afterwards.
package directory

import (
	"context"
	"errors"
	"strings"
)

// ErrNotFound is returned when the directory has no entry for the user, or
// the entry has no number.
var ErrNotFound = errors.New("directory: user not found")

// Entry is one user.
type Entry struct {
	// User is the user's principal name as the directory holds it
	// (user@domain), or the plain account name.
	User string
	// OID is the user's Entra object id, when the directory has it.
	OID string
	// Number is the phone number as the directory holds it; the caller
	// parses it with the policy's default region.
	Number string
}

// Directory looks users up by key: a user name in any of the forms
// NormaliseUser accepts, or an Entra object id.
type Directory interface {
	Lookup(ctx context.Context, key string) (Entry, error)
}

// NormaliseUser returns the forms a login name may be matched by, most
// specific first, lower-cased: "DOMAIN\user" gives "user"; "user@domain"
// gives "user@domain" then "user"; "user" gives "user". RADIUS User-Name
// and Entra's UPNs come in all three shapes.
func NormaliseUser(name string) []string {
	name = strings.ToLower(strings.TrimSpace(name))
	if name == "" {
		return nil
	}
	if i := strings.LastIndexByte(name, '\\'); i >= 0 {
		name = name[i+1:]
		if name == "" {
			return nil
		}
		return []string{name}
	}
	if i := strings.LastIndexByte(name, '@'); i > 0 {
		return []string{name, name[:i]}
	}
	return []string{name}
}
