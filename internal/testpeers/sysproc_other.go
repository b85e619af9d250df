//go:build unix && !linux

package testpeers

import "syscall"

// ChildAttr puts a child in its own process group, so that nothing it
// signals reaches the test binary. Without Linux's PR_SET_PDEATHSIG a child
// outlives a test binary that dies without stopping it.
func ChildAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
