package resolvers

import (
	"github.com/brookhq/brook/graph"
	"github.com/brookhq/brook/graph/model"
)

// SetComplexity gives list fields their cost: a list costs its length (its
// first/last argument, or the number of items asked for) times the cost of
// one element, so an operation that could fan out too far is refused before
// any resolver runs.
func SetComplexity(c *graph.ComplexityRoot) {
	c.Query.Users = func(child int, ids []string) int { return 1 + len(ids)*child }
	c.Query.SearchUsers = func(child int, _ string, first *int, _ *string) int { return listCost(child, first) }
	c.Mutation.UpsertUsers = func(child int, users []*model.UserInput) int { return 1 + len(users)*child }
	// A user keeps at most 25 push devices (push.Options.MaxDevices).
	c.User.Devices = func(child int) int { return 1 + 25*child }
	setFeedComplexity(c)
	setCommentComplexity(c)
	setSearchComplexity(c)
	setChatComplexity(c)
	setCallComplexity(c)
	setModerationComplexity(c)
}

// listCost is the cost of a list field whose page size is n.
func listCost(child int, n *int) int {
	size := 1
	if n != nil && *n > 0 {
		size = *n
	}
	return 1 + size*child
}
