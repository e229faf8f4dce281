//go:build !unix

package main

import "os"

// notifyReload does nothing where there is no SIGHUP: the TLS files are
// reloaded when they change on disk.
func notifyReload(chan<- os.Signal) {}
