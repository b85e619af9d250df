package directory_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hashcall/hashcall/internal/directory"
)

// Chain asks the store's enrolments (here a second CSV) before the
// organisation's export.
func ExampleChain() {
	dir, _ := os.MkdirTemp("", "directory")
	defer os.RemoveAll(dir)
	enrolled := filepath.Join(dir, "enrolled.csv")
	export := filepath.Join(dir, "export.csv")
	_ = os.WriteFile(enrolled, []byte("user,mobile\nalice@example.org,+447700900001\n"), 0o600)
	_ = os.WriteFile(export, []byte("user,mobile\nalice@example.org,+447700900999\nbob,+447700900002\n"), 0o600)
	a, _ := directory.OpenCSV(enrolled)
	b, _ := directory.OpenCSV(export)
	d := directory.Chain{a, b}
	for _, user := range []string{`CORP\alice`, "bob@example.org", "carol"} {
		e, err := d.Lookup(context.Background(), user)
		fmt.Println(user, e.Number, err)
	}
	// Output:
	// CORP\alice +447700900001 <nil>
	// bob@example.org +447700900002 <nil>
	// carol  directory: user not found
}
