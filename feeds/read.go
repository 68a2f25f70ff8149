package feeds

import (
	"context"

	"github.com/brookhq/brook/store"
)

// MarkSeen marks groups of the caller's aggregated or notification feed
// seen (no groups: the whole feed) and returns the feed with its counts.
func (s *Service) MarkSeen(ctx context.Context, feed string, groups []string, lookup Lookup) (*store.Feed, error) {
	return s.markFeed(ctx, feed, groups, false, lookup)
}

// MarkRead marks groups of the caller's aggregated or notification feed
// read, and so seen (no groups: the whole feed), and returns the feed with
// its counts.
func (s *Service) MarkRead(ctx context.Context, feed string, groups []string, lookup Lookup) (*store.Feed, error) {
	return s.markFeed(ctx, feed, groups, true, lookup)
}

func (s *Service) markFeed(ctx context.Context, feed string, groups []string, read bool, lookup Lookup) (*store.Feed, error) {
	f, _, err := ownFeed(ctx, "feed", feed)
	if err != nil {
		return nil, err
	}
	// An empty selection (a multi-select with nothing in it) marks
	// nothing; only leaving groups out marks the whole feed.
	if groups == nil || len(groups) > 0 {
		if err := s.store.MarkFeed(ctx, f, groups, read); err != nil {
			return nil, err
		}
	}
	out, err := s.lookup(lookup).LoadFeed(ctx, f.ID)
	if err != nil {
		return nil, err
	}
	if out == nil {
		return nil, store.NotFound("feed", f.ID)
	}
	return out, nil
}
