package directory

import (
	"context"
	"errors"
	"testing"
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
