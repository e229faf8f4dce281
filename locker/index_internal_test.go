package locker

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestIndexAgainstMap drives an index and a map with the same random adds
// and removes, with hashes drawn from a small range so that probe runs are
// long, wrap around the end of the slots and hold equal hashes, and checks
// after every step that both hold the same entries.
func TestIndexAgainstMap(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 1))
		var x index[*grant]
		model := map[string]*grant{}
		var names []string
		// 60,000 steps, each checked, some against every entry: the checks
		// stay plain ifs, failing with require.Failf, so as not to pay for
		// testify's reflection on every step.
		for step := range 3000 {
			if len(model) > 0 && rng.IntN(100) < 45 {
				name := names[rng.IntN(len(names))]
				g := model[name]
				x.remove(g.hash, g)
				delete(model, name)
				names = remove(names, name)
			} else {
				name := fmt.Sprint("k", step)
				// Hashes share their low 8 bits, as in a shard, and only
				// a few values above them, so many collide.
				g := &grant{uid: name, hash: uint64(rng.IntN(64))<<8 | 0x2a}
				x.add(g.hash, g)
				model[name] = g
				names = append(names, name)
			}
			if x.len() != len(model) {
				require.Failf(t, "index", "seed %d step %d: len %d, want %d", seed, step, x.len(), len(model))
			}
			if step%50 == 0 || len(model) < 10 {
				for name, g := range model {
					if got := x.get(g.hash, name); got != g {
						require.Failf(t, "index", "seed %d step %d: get(%s) = %v, want it", seed, step, name, got)
					}
				}
				seen := 0
				x.each(func(g *grant) {
					if model[g.uid] != g {
						require.Failf(t, "index", "seed %d step %d: each yields %s, not held", seed, step, g.uid)
					}
					seen++
				})
				if seen != len(model) {
					require.Failf(t, "index", "seed %d step %d: each yields %d, want %d", seed, step, seen, len(model))
				}
			}
			if got := x.get(0x2a, "absent"); got != nil {
				require.Failf(t, "index", "found an entry never added")
			}
			if step%100 == 99 {
				x.shrink()
				if len(x.slots) > minIndexSize && x.used*8 < len(x.slots) || x.used == 0 && x.slots != nil {
					require.Failf(t, "index", "seed %d step %d: %d entries in %d slots not shrunk", seed, step, x.used, len(x.slots))
				}
			}
			if x.used > 0 && len(x.slots) < minIndexSize {
				require.Failf(t, "index", "seed %d step %d: %d entries in %d slots", seed, step, x.used, len(x.slots))
			}
			if x.used*4 > len(x.slots)*3 {
				require.Failf(t, "index", "seed %d step %d: %d entries in %d slots, over 3/4 full", seed, step, x.used, len(x.slots))
			}
		}
	}
}

func remove(names []string, name string) []string {
	for i, n := range names {
		if n == name {
			names[i] = names[len(names)-1]
			return names[:len(names)-1]
		}
	}
	return names
}
