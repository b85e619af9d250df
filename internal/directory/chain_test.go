package directory

import (
	"context"
	"errors"
	"testing"
	"time"
)

type mapDir map[string]Entry

func (m mapDir) Lookup(_ context.Context, key string) (Entry, error) {
	if e, ok := m[key]; ok {
		return e, nil
	}
	return Entry{}, ErrNotFound
}

type failDir struct{ err error }

func (f failDir) Lookup(context.Context, string) (Entry, error) { return Entry{}, f.err }

func TestChain(t *testing.T) {
	errDown := errors.New("ldap down")
	first := mapDir{"alice": {User: "alice", Number: "+447700900001"}}
	second := mapDir{"alice": {User: "alice", Number: "+447700900002"}, "bob": {User: "bob", Number: "+447700900003"}}
	for _, tc := range []struct {
		name    string
		chain   Chain
		key     string
		want    string
		wantErr error
	}{
		{"first_wins", Chain{first, second}, "alice", "+447700900001", nil},
		{"falls_through", Chain{first, second}, "bob", "+447700900003", nil},
		{"nowhere", Chain{first, second}, "carol", "", ErrNotFound},
		{"empty", Chain{}, "alice", "", ErrNotFound},
		{"error_stops", Chain{failDir{errDown}, second}, "bob", "", errDown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := tc.chain.Lookup(context.Background(), tc.key)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if e.Number != tc.want {
				t.Errorf("number = %q, want %q", e.Number, tc.want)
			}
		})
	}
}

func TestCSVAccountNameFindsUPN(t *testing.T) {
	path := t.TempDir() + "/users.csv"
	writeFile(t, path, "user,mobile\n"+
		"alice@example.org,+447700900001\n"+
		"dave@a.example,+447700900004\n"+
		"dave@b.example,+447700900005\n"+
		"erin@example.org,+447700900006\n"+
		"erin,+447700900007\n", time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	d, err := OpenCSV(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, key, want string }{
		{"down_level_finds_upn", `CORP\alice`, "+447700900001"},
		{"account_finds_upn", "alice", "+447700900001"},
		{"ambiguous_account", `CORP\dave`, ""},
		{"upn_still_exact", "dave@b.example", "+447700900005"},
		{"plain_account_wins", "erin", "+447700900007"},
		{"upn_of_plain", "erin@example.org", "+447700900006"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := d.Lookup(context.Background(), tc.key)
			if tc.want == "" {
				if !errors.Is(err, ErrNotFound) {
					t.Fatalf("got %+v, %v; want ErrNotFound", e, err)
				}
				return
			}
			if err != nil || e.Number != tc.want {
				t.Fatalf("got %q, %v; want %q", e.Number, err, tc.want)
			}
		})
	}
}
