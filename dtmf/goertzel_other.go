//go:build !amd64 || purego

package dtmf

var goertzel = goertzelGeneric
