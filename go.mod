module github.com/hashcall/hashcall

go 1.26.0

require (
	github.com/pion/rtp v1.10.6
	github.com/spf13/cobra v1.10.2
	github.com/zaf/g711 v1.4.0
	golang.org/x/sys v0.50.0
)

require (
	github.com/inconshreveable/mousetrap v1.1.0 // indirect
	github.com/pion/randutil v0.1.0 // indirect
	github.com/spf13/pflag v1.0.10 // indirect
)
