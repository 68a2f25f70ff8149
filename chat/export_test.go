package chat

// EncodeUserEvents encodes evs one after the other as publishUserEvents
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

// HoldMembershipEvents sets the function that runs after a membership
// change has committed and before its events are published, and returns a
// function that removes it.
func HoldMembershipEvents(f func(channel string)) (reset func()) {
	membershipEvents = f
	return func() { membershipEvents = nil }
}

// OnReplayPageRead sets the function that runs after messageAdded's replay
// has read a page and before it delivers it, and returns a function that
// removes it.
func OnReplayPageRead(f func(channel string, page int)) (reset func()) {
	replayPageRead = f
	return func() { replayPageRead = nil }
}

// OnReplayQuery sets the function that runs as a messageAdded stream asks
// for a page of its replay (queried false) and in the shared query, once it
// has read (queried true), and returns a function that removes it.
func OnReplayQuery(f func(channel string, queried bool)) (reset func()) {
	replayQuery = f
	return func() { replayQuery = nil }
}
