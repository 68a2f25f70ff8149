package store

// ReactionCount is how many reactions of one kind something has. Activity
// and message reactions both report their counts with it.
type ReactionCount struct {
	Kind  string
	Count int
}

// maxReactionKind caps a reaction kind.
const maxReactionKind = 32

// CheckReactionKind checks a reaction kind: 1 to 32 letters, digits, _ or -.
func CheckReactionKind(field, kind string) error {
	if kind == "" || len(kind) > maxReactionKind {
		return Invalid(field, "a reaction kind must be 1 to %d characters", maxReactionKind)
	}
	for _, r := range kind {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return Invalid(field, "%q is not a valid reaction kind: use letters, digits, _ and - only", truncate(kind, 80))
		}
	}
	return nil
}
