// Package bench holds the performance measurements of this module: Go
// benchmarks of the node table, the wire codec, the quorum client over
// in-process and loopback-HTTP lockers, and the memory a node takes per held
// lock. The package itself has no API; everything lives in its _test.go files.
//
// The load generator is the command bench/cmd/dsync-bench (its logic is in
// bench/loadgen), and bench/compare is a separate module that runs the same
// workload against Redlock and etcd. bench/README.md says how to run each and
// records the results.
//
//	go test -run '^$' -bench . -benchmem ./bench/
package bench
