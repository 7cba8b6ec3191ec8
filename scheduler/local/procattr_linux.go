package local

import "syscall"

// sysProcAttr makes the kernel kill a worker when the ferry process dies,
// so workers never outlive it.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
