package store

// groupBy returns, for each of keys, the items whose key it is, in their
// order; a key with none gets an empty, non-nil list. Batched lookups use
// it to answer one list per key, in the order the keys were asked.
func groupBy[K comparable, V any](keys []K, items []V, keyOf func(V) K) [][]V {
	by := make(map[K][]V, len(keys))
	for _, it := range items {
		k := keyOf(it)
		by[k] = append(by[k], it)
	}
	out := make([][]V, len(keys))
	for i, k := range keys {
		out[i] = by[k]
		if out[i] == nil {
			out[i] = []V{}
		}
	}
	return out
}

// inOrder returns, for each of keys, the item whose key it is, or the zero
// V (nil) where none was found: a batched lookup answers in the order asked.
func inOrder[K comparable, V any](keys []K, items []V, keyOf func(V) K) []V {
	by := make(map[K]V, len(items))
	for _, it := range items {
		by[keyOf(it)] = it
	}
	out := make([]V, len(keys))
	for i, k := range keys {
		out[i] = by[k]
	}
	return out
}
