package store

// ReactionCount is how many reactions of one kind something has. Activity
// and message reactions both report their counts with it.
type ReactionCount struct {
	Kind  string
	Count int
}
