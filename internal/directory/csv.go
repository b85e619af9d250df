package directory

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// CSV is a directory in a CSV file with a header row naming its columns:
// "user" (UPN or account name, required), "mobile" (required) and "oid"
// (optional), in any order; other columns are ignored. The file is read
// again when its modification time or size changes, so an export job can
// replace it while hashcall runs; a file that no longer parses keeps the
// last good contents and the error is returned by Reload.
type CSV struct {
	path string

	mu      sync.Mutex
	mod     time.Time
	size    int64
	byUser  map[string]Entry
	byOID   map[string]Entry
	loadErr error
}

// OpenCSV reads the directory at path.
func OpenCSV(path string) (*CSV, error) {
	c := &CSV{path: path}
	if err := c.Reload(); err != nil {
		return nil, err
	}
	return c, nil
}

// Reload reads the file if it changed since the last read.
func (c *CSV) Reload() error {
	st, err := os.Stat(c.path)
	if err != nil {
		return fmt.Errorf("directory.csv: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byUser != nil && st.ModTime().Equal(c.mod) && st.Size() == c.size {
		return c.loadErr
	}
	f, err := os.Open(c.path)
	if err != nil {
		return fmt.Errorf("directory.csv: %w", err)
	}
	defer f.Close()
	byUser, byOID, err := parseCSV(f)
	c.mod, c.size = st.ModTime(), st.Size()
	if err != nil {
		c.loadErr = fmt.Errorf("directory.csv %s: %w", c.path, err)
		return c.loadErr
	}
	c.byUser, c.byOID, c.loadErr = byUser, byOID, nil
	return nil
}

func parseCSV(r io.Reader) (byUser, byOID map[string]Entry, err error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	cr.Comment = '#'
	head, err := cr.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil, errors.New("empty file: want a header row such as user,mobile,oid")
		}
		return nil, nil, err
	}
	col := map[string]int{}
	for i, h := range head {
		col[strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))] = i
	}
	ui, uok := col["user"]
	mi, mok := col["mobile"]
	oi, ook := col["oid"]
	if !uok || !mok {
		return nil, nil, fmt.Errorf("header %q: want columns user and mobile (oid optional)", strings.Join(head, ","))
	}
	byUser, byOID = map[string]Entry{}, map[string]Entry{}
	short, ambiguous := map[string]bool{}, map[string]bool{}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, err
		}
		line, _ := cr.FieldPos(0)
		field := func(i int) string {
			if i < len(rec) {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		e := Entry{User: field(ui), Number: field(mi)}
		if ook {
			e.OID = strings.ToLower(field(oi))
		}
		if e.User == "" {
			return nil, nil, fmt.Errorf("line %d: empty user", line)
		}
		forms := NormaliseUser(e.User)
		key := forms[0]
		if _, dup := byUser[key]; dup && !short[key] {
			return nil, nil, fmt.Errorf("line %d: user %q listed twice", line, e.User)
		}
		byUser[key] = e
		delete(short, key)
		// A UPN's account name alone (alice for alice@example.org) finds it
		// too, as RADIUS's DOMAIN\alice does, unless two UPNs share it or
		// a plain account has it.
		for _, f := range forms[1:] {
			if _, taken := byUser[f]; taken {
				if short[f] {
					ambiguous[f] = true
					delete(byUser, f)
				}
				continue
			}
			if !ambiguous[f] {
				byUser[f], short[f] = e, true
			}
		}
		if e.OID != "" {
			byOID[e.OID] = e
		}
	}
	return byUser, byOID, nil
}

// Lookup finds key as an object id or a user name (NormaliseUser's forms).
func (c *CSV) Lookup(_ context.Context, key string) (Entry, error) {
	_ = c.Reload() // on a bad new file, the last good contents answer
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byOID[strings.ToLower(strings.TrimSpace(key))]; ok && e.Number != "" {
		return e, nil
	}
	for _, k := range NormaliseUser(key) {
		if e, ok := c.byUser[k]; ok && e.Number != "" {
			return e, nil
		}
	}
	return Entry{}, ErrNotFound
}
