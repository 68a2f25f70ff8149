package store

// SetFactsRead sets the hook that runs inside CallParticipantFacts between
// its PostgreSQL read and its Redis write, and returns a function that
// removes it.
func SetFactsRead(f func()) (reset func()) {
	factsRead = f
	return func() { factsRead = nil }
}

// EncodeUserEvents encodes evs one after the other as PublishUserEvents
// does.
func EncodeUserEvents(evs []*UserEvent) ([][]byte, error) {
	var enc userEventEncoder
	out := make([][]byte, len(evs))
	for i, ev := range evs {
		data, err := enc.encode(ev)
		if err != nil {
			return nil, err
		}
		out[i] = data
	}
	return out, nil
}
