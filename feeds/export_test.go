package feeds

import (
	"github.com/google/uuid"
)

// WatchedActivities is how many activities the node listens to for
// changes (each one bus subscriber), for tests that count the bus's.
func WatchedActivities(s *Service) int {
	s.watch.mu.Lock()
	defer s.watch.mu.Unlock()
	n := 0
	for _, e := range s.watch.m {
		if e.sub != nil {
			n++
		}
	}
	return n
}

// WatchersOf is how many streams of the node watch an activity's changes
// with the node listening to them.
func WatchersOf(s *Service, id string) int {
	aid, err := uuid.Parse(id)
	if err != nil {
		return 0
	}
	s.watch.mu.Lock()
	defer s.watch.mu.Unlock()
	e := s.watch.m[aid]
	if e == nil || e.sub == nil {
		return 0
	}
	return len(e.streams)
}
