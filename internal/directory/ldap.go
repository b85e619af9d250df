package directory

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// LDAPConfig configures an LDAP directory (keys directory.ldap.*).
type LDAPConfig struct {
	URL       string // ldap://HOST[:PORT] or ldaps://HOST[:PORT]
	StartTLS  bool   // upgrade ldap:// with StartTLS (RFC 4511 §4.14)
	TLS       *tls.Config
	BindDN    string // empty: no bind (anonymous)
	Password  string
	BaseDN    string
	Filter    string // with one %s for the escaped user name; default (userPrincipalName=%s)
	Attribute string // default mobile
	Timeout   time.Duration
}

// LDAP is a directory in Active Directory or OpenLDAP, looked up by user
// principal name with a filter such as (userPrincipalName=%s). Each lookup
// opens its own connection (dial, StartTLS, bind, search, close), so a
// restarted server or a rotated password needs nothing more.
type LDAP struct {
	c LDAPConfig
}

// ErrLDAP is wrapped by the errors of LDAP lookups that are not
// ErrNotFound: the server is down, the bind is refused, the filter is bad.
var ErrLDAP = errors.New("directory.ldap")

// NewLDAP checks c and returns the directory; it does not connect.
func NewLDAP(c LDAPConfig) (*LDAP, error) {
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "ldap" && u.Scheme != "ldaps") || u.Host == "" {
		return nil, fmt.Errorf("%w: url %q: want ldap://HOST[:PORT] or ldaps://HOST[:PORT]", ErrLDAP, c.URL)
	}
	if c.StartTLS && u.Scheme == "ldaps" {
		return nil, fmt.Errorf("%w: StartTLS is for ldap:// URLs", ErrLDAP)
	}
	if c.BaseDN == "" {
		return nil, fmt.Errorf("%w: no base DN", ErrLDAP)
	}
	if c.Filter == "" {
		c.Filter = "(userPrincipalName=%s)"
	}
	if strings.Count(c.Filter, "%s") != 1 {
		return nil, fmt.Errorf("%w: filter %q: want one %%s", ErrLDAP, c.Filter)
	}
	if c.Attribute == "" {
		c.Attribute = "mobile"
	}
	if c.Timeout <= 0 {
		c.Timeout = 5 * time.Second
	}
	if c.TLS == nil {
		c.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if c.TLS.ServerName == "" {
		c.TLS = c.TLS.Clone()
		c.TLS.ServerName = u.Hostname()
	}
	return &LDAP{c: c}, nil
}

var guidRe = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// Lookup finds the user whose principal name is key. An Entra object id
// (a GUID) is not a user name: it is not found without asking the server.
func (l *LDAP) Lookup(ctx context.Context, key string) (Entry, error) {
	key = strings.TrimSpace(key)
	if key == "" || guidRe.MatchString(key) || len(key) > 256 {
		return Entry{}, ErrNotFound
	}
	timeout := l.c.Timeout
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
		timeout = time.Until(dl)
	}
	if timeout <= 0 {
		return Entry{}, fmt.Errorf("%w: %w", ErrLDAP, context.DeadlineExceeded)
	}
	conn, err := ldap.DialURL(l.c.URL, ldap.DialWithDialer(&net.Dialer{Timeout: timeout}), ldap.DialWithTLSConfig(l.c.TLS))
	if err != nil {
		return Entry{}, fmt.Errorf("%w: %w", ErrLDAP, err)
	}
	defer conn.Close()
	conn.SetTimeout(timeout)
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if l.c.StartTLS {
		if err := conn.StartTLS(l.c.TLS); err != nil {
			return Entry{}, fmt.Errorf("%w: StartTLS: %w", ErrLDAP, err)
		}
	}
	if l.c.BindDN != "" {
		if err := conn.Bind(l.c.BindDN, l.c.Password); err != nil {
			return Entry{}, fmt.Errorf("%w: bind as %s: %w", ErrLDAP, l.c.BindDN, err)
		}
	}
	req := ldap.NewSearchRequest(l.c.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 2, int(timeout/time.Second)+1, false,
		fmt.Sprintf(l.c.Filter, ldap.EscapeFilter(key)), []string{l.c.Attribute, "userPrincipalName"}, nil)
	res, err := conn.Search(req)
	if err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) {
		if ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
			return Entry{}, ErrNotFound
		}
		return Entry{}, fmt.Errorf("%w: search: %w", ErrLDAP, err)
	}
	if res == nil || len(res.Entries) == 0 {
		return Entry{}, ErrNotFound
	}
	if len(res.Entries) > 1 {
		return Entry{}, fmt.Errorf("%w: %d entries match the user: the filter must find one", ErrLDAP, len(res.Entries))
	}
	e := res.Entries[0]
	num := strings.TrimSpace(e.GetAttributeValue(l.c.Attribute))
	if num == "" {
		return Entry{}, ErrNotFound
	}
	user := e.GetAttributeValue("userPrincipalName")
	if user == "" {
		user = key
	}
	return Entry{User: user, Number: num}, nil
}
