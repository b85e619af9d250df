package numbermatch_test

import (
	"fmt"
	"time"

	"github.com/hashcall/hashcall/numbermatch"
)

func Example() {
	code, err := numbermatch.Generate(nil, numbermatch.DefaultLength) // show it on the screen
	if err != nil {
		panic(err)
	}
	secret := numbermatch.NewRandomHasher().Seal(code, time.Now().Add(numbermatch.DefaultTTL))
	fmt.Println(secret.Check([]byte("not it"), time.Now()))
	fmt.Println(secret.Check([]byte(code), time.Now()))
	fmt.Println(secret.Check([]byte(code), time.Now()))
	// Output:
	// mismatch
	// match
	// used
}
