package resolvers

import (
	"github.com/brookhq/brook/graph"
	"github.com/brookhq/brook/store"
)

// callLoaders are the dataloaders of the calls product.
type callLoaders struct{}

func newCallLoaders(_ *store.Store) callLoaders { return callLoaders{} }

// setCallComplexity gives the calls product's list fields their cost.
func setCallComplexity(_ *graph.ComplexityRoot) {}
