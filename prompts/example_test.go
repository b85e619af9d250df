package prompts_test

import (
	"fmt"

	"github.com/hashcall/hashcall/prompts"
)

func ExampleLoad() {
	// With no prompts directory, the embedded defaults; "en_gb" is en-GB.
	set, err := prompts.Load("", "en_gb")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(set.Locale, len(set.Ask) > 0, len(set.Get(prompts.Goodbye)) > 0)

	_, err = prompts.Load("", "fr-FR")
	fmt.Println(err)
	// Output:
	// en-GB true true
	// prompts: unknown locale "fr-FR": it is not built in and no prompts directory is configured; available: en-GB, en-US
}
