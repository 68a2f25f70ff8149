package resolvers

import "context"

// OnDeparturesCommitted sets the function that runs with the request's
// context after a removal of call participants commits, and returns a
// function that removes it.
func OnDeparturesCommitted(f func(ctx context.Context)) (reset func()) {
	departuresCommitted = f
	return func() { departuresCommitted = nil }
}
