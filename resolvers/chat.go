package resolvers

import (
	"github.com/brookhq/brook/graph"
	"github.com/brookhq/brook/store"
)

// chatLoaders are the dataloaders of the chat product.
type chatLoaders struct{}

func newChatLoaders(_ *store.Store) chatLoaders { return chatLoaders{} }

// setChatComplexity gives the chat product's list fields their cost.
func setChatComplexity(_ *graph.ComplexityRoot) {}
