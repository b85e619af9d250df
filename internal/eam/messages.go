package eam

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Locales of the page, the first the fallback.
var Locales = []string{"en-GB", "en-US"}

// messages are the page's texts by locale: the one home of every string
// the user reads. A deployment overrides any of them with
// eam.page_dir/<locale>.json, an object of the same keys.
var messages = map[string]map[string]string{
	"en-GB": {
		"title":            "Verify it's you",
		"signing_in_as":    "Signing in as %s",
		"calling":          "We're calling your phone ending %s. Answer it and press the hash key (#).",
		"queued":           "Calling your phone…",
		"calling_status":   "Calling your phone…",
		"ringing":          "Your phone is ringing. Answer it.",
		"answered":         "Call answered: press the hash key (#) now.",
		"verified":         "Verified. Taking you back to the sign-in…",
		"no_answer":        "There was no answer.",
		"wrong_key":        "That wasn't the hash key (#).",
		"no_key":           "No key was pressed.",
		"hung_up":          "The call ended before the hash key (#) was pressed.",
		"busy":             "Your phone was busy.",
		"declined":         "The call was declined.",
		"unreachable":      "We couldn't reach your phone.",
		"failed":           "The call failed.",
		"cancelled":        "Cancelled.",
		"no_more_calls":    "You've had as many calls as this sign-in allows.",
		"call_again":       "Call me again",
		"cancel":           "Cancel",
		"continue":         "Continue",
		"check":            "Check again",
		"enrol_intro":      "We don't have a phone number for you yet. Enter your mobile number and we'll call it.",
		"country":          "Country code",
		"mobile":           "Mobile number",
		"call_me":          "Call me",
		"bad_number":       "That doesn't look like a phone number. Check it and try again.",
		"refused_number":   "That number can't be used. Enter your mobile number.",
		"no_number":        "We don't have a phone number for you. Contact your IT service desk.",
		"unavailable":      "Phone verification is unavailable at the moment. Try again later.",
		"rate_limited":     "Too many calls have been made. Try again later.",
		"expired":          "This sign-in has expired. Go back and sign in again.",
		"bad_request":      "This sign-in request can't be used. Go back and sign in again.",
		"returning":        "Taking you back to the sign-in…",
		"noscript":         "Press Continue to go back to the sign-in.",
		"noscript_status":  "Once you've answered and pressed the hash key (#), press Check again.",
		"error_title":      "Sign-in can't continue",
		"logo_alt":         "Logo",
		"hint_phone_field": "Such as 07700 900123",
	},
}

func init() {
	us := maps.Clone(messages["en-GB"])
	for k, v := range us {
		us[k] = strings.ReplaceAll(v, "hash key", "pound key")
	}
	us["title"] = "Verify it's you"
	us["hint_phone_field"] = "Such as (201) 555-0123"
	messages["en-US"] = us
}

// texts is one locale's messages.
type texts map[string]string

// T returns the message key, formatted with args.
func (t texts) T(key string, args ...any) string {
	s, ok := t[key]
	if !ok {
		return key
	}
	if len(args) > 0 {
		return fmt.Sprintf(s, args...)
	}
	return s
}

// loadTexts returns the messages of every locale with the overrides of
// pageDir applied. An override may only replace known keys, and must keep
// the same number of %s verbs.
func loadTexts(pageDir string) (map[string]texts, error) {
	out := map[string]texts{}
	for loc, m := range messages {
		out[loc] = maps.Clone(m)
	}
	if pageDir == "" {
		return out, nil
	}
	for loc := range out {
		p := filepath.Join(pageDir, loc+".json")
		data, err := os.ReadFile(p)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		var over map[string]string
		if err := json.Unmarshal(data, &over); err != nil {
			return nil, fmt.Errorf("%s: want a JSON object of strings: %w", p, err)
		}
		keys := make([]string, 0, len(over))
		for k := range over {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			orig, ok := out[loc][k]
			if !ok {
				return nil, fmt.Errorf("%s: unknown text %s", p, strconv.Quote(k))
			}
			if strings.Count(orig, "%s") != strings.Count(over[k], "%s") {
				return nil, fmt.Errorf("%s: %s: keep the %d %%s of the original", p, k, strings.Count(orig, "%s"))
			}
			out[loc][k] = over[k]
		}
	}
	return out, nil
}

// pickLocale chooses the page's locale from Accept-Language (RFC 9110
// 12.5.4): the highest-weighted en-US or en-GB; another English region
// gets en-GB; anything else the fallback.
func pickLocale(header, fallback string) string {
	best, bestQ := fallback, -1.0
	for _, part := range strings.Split(header, ",") {
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				continue
			}
			q = f
		}
		tag = strings.ToLower(strings.TrimSpace(tag))
		var loc string
		switch {
		case tag == "en-us":
			loc = "en-US"
		case tag == "en-gb" || strings.HasPrefix(tag, "en-"):
			loc = "en-GB"
		case tag == "en":
			loc = fallback
		default:
			continue
		}
		if q > bestQ {
			best, bestQ = loc, q
		}
	}
	return best
}
