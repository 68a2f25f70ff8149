package ephemeral

// MarkUnreadWriteFailed records a failed counter write that could not
// invalidate its users, as while Redis is unreachable.
func (s *State) MarkUnreadWriteFailed() { s.unreadWriteFailed() }
