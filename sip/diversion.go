package sip

import (
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// Diversion says whether the far end's responses showed the call forwarded
// to another phone (call diversion: how verification calls are stolen, and
// how they end up in voicemail), and why.
type Diversion struct {
	// Diverted is set by a 181 Call Is Being Forwarded (RFC 3261 §21.1.3),
	// a Diversion header (RFC 5806) or a History-Info header that shows a
	// retarget to another user (RFC 7044) in a provisional or final
	// response.
	Diverted bool
	// Reasons are the reasons the responses gave, each once, in order:
	// Diversion's reason parameter ("unconditional", "user-busy",
	// "no-answer", …), History-Info's Reason cause as RFC 4458 §2 maps it
	// (302 "unconditional", 486 "user-busy", 408 "no-answer", …, or
	// "cause=NNN"), "retargeted" for a History-Info retarget without a
	// cause, and "forwarded" for a 181 alone.
	Reasons []string
}

// Add merges the diversion the response r shows into d (for reading
// captures: a live call does it by itself).
func (d *Diversion) Add(r *sip.Response) { d.add(r) }

// add merges the diversion r shows into d.
func (d *Diversion) add(r *sip.Response) {
	if r == nil {
		return
	}
	var reasons []string
	diverted := false
	for _, h := range r.GetHeaders("Diversion") {
		for _, entry := range splitEntries(h.Value()) {
			diverted = true
			if v := paramValue(entry, "reason"); v != "" {
				reasons = append(reasons, strings.ToLower(v))
			}
		}
	}
	var hist []string
	for _, h := range r.GetHeaders("History-Info") {
		hist = append(hist, splitEntries(h.Value())...)
	}
	if rs, ok := historyDiversion(hist); ok {
		diverted = true
		reasons = append(reasons, rs...)
	}
	if r.StatusCode == 181 {
		diverted = true
		if len(reasons) == 0 {
			reasons = append(reasons, "forwarded")
		}
	}
	if !diverted {
		return
	}
	d.Diverted = true
	for _, s := range reasons {
		if s != "" && len(s) <= 64 && !slices.Contains(d.Reasons, s) && len(d.Reasons) < 8 {
			d.Reasons = append(d.Reasons, s)
		}
	}
}

// causeReason maps a History-Info Reason cause to the redirecting reason
// RFC 4458 §2 gives it.
var causeReason = map[int]string{
	302: "unconditional",
	404: "unknown",
	408: "no-answer",
	480: "deflection",
	486: "user-busy",
	487: "deflection",
	503: "unavailable",
}

// historyDiversion reads History-Info entries (RFC 7044 §4): the call was
// diverted when an entry carries a Reason with a cause, is tagged "mp"
// (the target was mapped to another user), or names another user than the
// first entry without being an "rc" entry (a registered contact of the
// same user, which is not a diversion). A History-Info that records only
// our request is none.
func historyDiversion(entries []string) ([]string, bool) {
	var reasons []string
	diverted := false
	first := ""
	for i, e := range entries {
		uri, params := splitURI(e)
		user := uriUser(uri)
		if i == 0 {
			first = user
		}
		if c := historyCause(uri); c != 0 {
			diverted = true
			if s, ok := causeReason[c]; ok {
				reasons = append(reasons, s)
			} else {
				reasons = append(reasons, "cause="+strconv.Itoa(c))
			}
			continue
		}
		switch {
		case hasParam(params, "mp"):
			diverted = true
			reasons = append(reasons, "retargeted")
		case i > 0 && !hasParam(params, "rc") && !hasParam(params, "np") && user != "" && user != first:
			diverted = true
			reasons = append(reasons, "retargeted")
		}
	}
	return reasons, diverted
}

// splitEntries splits a header value into its comma-separated entries,
// keeping commas inside <…> and quotes.
func splitEntries(v string) []string {
	var out []string
	depth, quoted, start := 0, false, 0
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '"':
			quoted = !quoted
		case quoted:
		case c == '<':
			depth++
		case c == '>' && depth > 0:
			depth--
		case c == ',' && depth == 0:
			if s := strings.TrimSpace(v[start:i]); s != "" {
				out = append(out, s)
			}
			start = i + 1
		}
	}
	if s := strings.TrimSpace(v[start:]); s != "" {
		out = append(out, s)
	}
	return out
}

// splitURI returns the URI inside an entry's <…> and the parameters after
// it.
func splitURI(e string) (uri, params string) {
	open := strings.IndexByte(e, '<')
	if open < 0 {
		u, p, _ := strings.Cut(e, ";")
		return strings.TrimSpace(u), p
	}
	end := strings.IndexByte(e[open:], '>')
	if end < 0 {
		return e[open+1:], ""
	}
	return e[open+1 : open+end], e[open+end+1:]
}

// uriUser is the user part of a SIP URI, without its parameters.
func uriUser(uri string) string {
	_, rest, ok := strings.Cut(uri, ":")
	if !ok {
		return ""
	}
	user, _, ok := strings.Cut(rest, "@")
	if !ok {
		return ""
	}
	user, _, _ = strings.Cut(user, ";")
	return user
}

// historyCause finds the cause of a Reason header escaped into a URI's
// headers (RFC 7044 §4.4: <sip:bob@example.com?Reason=SIP%3Bcause%3D302>).
func historyCause(uri string) int {
	_, hdrs, ok := strings.Cut(uri, "?")
	if !ok {
		return 0
	}
	for _, h := range strings.Split(hdrs, "&") {
		name, val, ok := strings.Cut(h, "=")
		if !ok || !strings.EqualFold(name, "Reason") {
			continue
		}
		if u, err := url.QueryUnescape(val); err == nil {
			val = u
		}
		if c := paramValue(val, "cause"); c != "" {
			if n, err := strconv.Atoi(c); err == nil && n >= 100 && n <= 699 {
				return n
			}
		}
	}
	return 0
}

// paramValue returns the value of the ;name=value parameter in s (outside
// <…>), unquoted, or "".
func paramValue(s, name string) string {
	if i := strings.LastIndexByte(s, '>'); i >= 0 {
		s = s[i+1:]
	}
	for _, p := range strings.Split(s, ";") {
		k, v, ok := strings.Cut(p, "=")
		if ok && strings.EqualFold(strings.TrimSpace(k), name) {
			return strings.Trim(strings.TrimSpace(v), `"`)
		}
	}
	return ""
}

// hasParam reports whether the parameter list holds name (with or without
// a value).
func hasParam(params, name string) bool {
	for _, p := range strings.Split(params, ";") {
		k, _, _ := strings.Cut(p, "=")
		if strings.EqualFold(strings.TrimSpace(k), name) {
			return true
		}
	}
	return false
}
