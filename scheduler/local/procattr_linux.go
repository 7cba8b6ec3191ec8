package local

import "syscall"

// sysProcAttr makes the kernel kill a worker when the ferry process dies,
// so workers never outlive it. (The signal follows the OS thread that
// started the child; the Go runtime keeps its threads unless a goroutine
// exits while locked to one, which this package never does.)
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
