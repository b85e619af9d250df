// Package apicheck holds only a test: TestPublicAPINoInternal checks that
// hashcall's public packages (dtmf, media, media/wav, sip, verify, replay,
// prompts, voicemail, numbermatch and their sub-packages) never mention a
// type of a hashcall internal/ package in their exported API, so a user
// of the module can name every type they are handed. Importing internal/
// packages for the implementation (sip and verify use internal/redact) is
// allowed.
//
// The test reads the packages' export data, as the compiler wrote it, with
// go list -export and go/importer, and logs the package graph: each public
// package and the hashcall packages it imports.
package apicheck
