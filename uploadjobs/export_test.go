package uploadjobs

import (
	"context"

	"github.com/brookhq/brook/store"
)

// SetLockedHook makes the thumbnail job call fn while it holds the
// upload's row lock (tests stage races with it).
func (s *Service) SetLockedHook(fn func(ctx context.Context, tx *store.Store)) { s.lockedHook = fn }
