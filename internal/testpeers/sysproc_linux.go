package testpeers

import "syscall"

// ChildAttr puts a child in its own process group, so that nothing it
// signals reaches the test binary, and has the kernel SIGKILL it should the
// test binary die without stopping it (PR_SET_PDEATHSIG).
func ChildAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
