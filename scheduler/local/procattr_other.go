//go:build !linux

package local

import "syscall"

// sysProcAttr has no parent-death signal outside Linux; workers are still
// stopped by Close.
func sysProcAttr() *syscall.SysProcAttr { return nil }
