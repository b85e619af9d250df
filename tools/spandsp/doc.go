// Package spandsp wraps spandsp's DTMF receiver (dtmf_rx) through cgo, so
// that the tests and benchmarks of package dtmf can run it side by side with
// our detector on the same audio (the contract's reference detector, see
// shared/specs/dtmf-conformance.md, "Speed").
//
// The wrapper is only compiled with the build tag spandsp and needs the
// Debian package libspandsp-dev (which pulls in libtiff-dev for its
// headers):
//
//	go test -tags spandsp -run Spandsp -v ./dtmf/
//	go test -tags spandsp -run XX -bench Spandsp -benchmem ./dtmf/
//	go build -tags spandsp ./tools/spandsp-detect
//
// Without the tag the package is empty, so untagged builds and tools such as
// go vet ./... still see a valid package.
package spandsp
