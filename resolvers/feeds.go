package resolvers

import (
	"github.com/brookhq/brook/graph"
	"github.com/brookhq/brook/store"
)

// feedLoaders are the dataloaders of the feeds product.
type feedLoaders struct{}

func newFeedLoaders(_ *store.Store) feedLoaders { return feedLoaders{} }

// setFeedComplexity gives the feeds product's list fields their cost.
func setFeedComplexity(_ *graph.ComplexityRoot) {}
