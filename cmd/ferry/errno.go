package main

import "syscall"

const syscallEADDRINUSE = syscall.EADDRINUSE
