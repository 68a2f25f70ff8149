package store

// SetFactsRead sets the hook that runs inside CallParticipantFacts between
// its PostgreSQL read and its Redis write, and returns a function that
// removes it.
func SetFactsRead(f func()) (reset func()) {
	factsRead = f
	return func() { factsRead = nil }
}
