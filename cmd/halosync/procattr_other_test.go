//go:build !linux

package main

import "os/exec"

// dieWithTest is a no-op where the kernel cannot tie a child's life to its parent's; the
// tests' cleanups still kill every process they start.
func dieWithTest(*exec.Cmd) {}
