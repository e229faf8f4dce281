//go:build !(linux && (amd64 || arm64))

package simulation

import "errors"

// NetnsNetwork is only available on Linux (amd64, arm64).
type NetnsNetwork struct{ *HTTPNetwork }

// NetnsAvailable reports that the netns tier needs Linux.
func NetnsAvailable() error { return errors.New("network namespaces need Linux") }

// NewNetnsNetwork fails outside Linux.
func NewNetnsNetwork(cfg HTTPConfig) (*NetnsNetwork, error) { return nil, NetnsAvailable() }

// CleanupNetns does nothing outside Linux.
func CleanupNetns() {}
