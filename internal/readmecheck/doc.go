// Package readmecheck holds only a test: it takes the Go programs out of the
// repository's README.md, builds and vets them in a module of their own that
// depends on this one through a replace directive (as the README tells a new
// user to), and runs the README's three-node example with them. It is a
// package of its own, not a test beside the code the snippets use, because
// the snippets span several packages (locker, rest, dsync) and the README
// belongs to none of them.
package readmecheck
