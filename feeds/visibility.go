package feeds

import (
	"context"
	"errors"

	"github.com/google/uuid"

	"github.com/brookhq/brook/internal/auth"
	"github.com/brookhq/brook/store"
)

// visibleActivities keeps, of activities found by a search or saved as
// bookmarks, those the caller may read now, in their order. It is the one
// place lists that gather activities from many feeds ask who may see
// what, with the rule activity(id) applies (checkActivityRead: the
// origin feed's visibility and follows).
func (s *Service) visibleActivities(ctx context.Context, id auth.Identity, acts []*store.Activity) ([]*store.Activity, error) {
	out := acts[:0:0]
	for _, a := range acts {
		err := s.checkActivityRead(ctx, id, a, nil)
		switch {
		case err == nil:
			out = append(out, a)
		case !errors.Is(err, auth.ErrForbidden):
			return nil, err
		}
	}
	return out, nil
}

// scanBatch is how many candidates a filtered list reads at a time at
// least, so that a page whose candidates are mostly hidden takes few
// statements.
const scanBatch = 100

// fillPage reads a list's candidates, newest first, through fetch (up to
// limit with ids below before) a batch at a time, keeps those keep
// returns, and stops once it has first+1 (a full page and proof that more
// follow) or the candidates run out. A page is therefore never short of
// visible items unless it is the last.
func fillPage[T any](ctx context.Context, first int, after uuid.UUID,
	fetch func(ctx context.Context, before uuid.UUID, limit int) ([]T, error),
	key func(T) uuid.UUID,
	keep func(ctx context.Context, items []T) ([]T, error),
) (store.Page[T], error) {
	var out []T
	before := after
	limit := max(first+1, scanBatch)
	for len(out) <= first {
		batch, err := fetch(ctx, before, limit)
		if err != nil {
			return store.Page[T]{}, err
		}
		if len(batch) == 0 {
			break
		}
		before = key(batch[len(batch)-1])
		kept, err := keep(ctx, batch)
		if err != nil {
			return store.Page[T]{}, err
		}
		out = append(out, kept...)
		if len(batch) < limit {
			break
		}
	}
	return store.PageOf(out, first), nil
}
