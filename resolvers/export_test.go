package resolvers

// HoldMembershipEvents sets the function that runs after a membership
// change has committed and before its events are published, and returns a
// function that removes it.
func HoldMembershipEvents(f func(channel string)) (reset func()) {
	membershipEvents = f
	return func() { membershipEvents = nil }
}
