package feeds

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/brookhq/brook/internal/redisguard"
	"github.com/brookhq/brook/store"
	"github.com/brookhq/brook/workers"
)

// Feed events travel on the event bus: a feed's updates on its topic
// (feedUpdated reads it), and on a timeline's follows topic the news that
// the feeds it merges at read time changed. Jobs publish updates after
// their commit; follows and the jobs that move a feed across the pull
// threshold publish follow changes.

// FeedUpdate is the event feedUpdated streams: activities added to a feed
// and ids removed from it, and the current state of activities it shows
// that changed (edits, reactions, comment counts). It carries whole
// activities, so subscribers need no database query to deliver it.
type FeedUpdate struct {
	FeedID  string            `json:"feed"`
	Added   []*store.Activity `json:"added,omitempty"`
	Removed []uuid.UUID       `json:"removed,omitempty"`
	// Changed are feedUpdated's updated: activities the feed shows whose
	// state changed. They are never published on the feed's topic: each
	// stream fills them from the activities' own topics (ActivityTopic),
	// coalesced (updates.go).
	Changed []*store.Activity `json:"-"`
	// ChangedCounts are the reaction counts of Changed, in order, read
	// with them once per node, so that delivering them asks nothing more.
	ChangedCounts [][]store.ReactionCount `json:"-"`
}

// feedBusEvent is what travels on a feed's topic: an update, or the news
// that who may read the feed may have changed.
type feedBusEvent struct {
	FeedUpdate
	// Access, when set, says the feed's readers must be checked again: all
	// of them, or only User when it is set.
	Access *accessChange `json:"access,omitempty"`
}

// accessChange is a change to who may read a feed (see feedBusEvent).
type accessChange struct {
	User string `json:"user,omitempty"`
}

// FeedTopic is the bus topic of a feed's updates.
func FeedTopic(feedID string) string { return "feed:" + feedID }

// ActivityTopic is the bus topic of an activity's changes: an edit, a
// reaction added, changed or removed, a comment added or deleted. Its
// events carry no state: each node that watches the activity reads it
// once per event, for all its streams (updates.go).
func ActivityTopic(id uuid.UUID) string { return "activity:" + id.String() }

// FollowsTopic is the bus topic that tells a timeline's live updates that
// the feeds it merges at read time changed (a follow or unfollow, or a
// followed feed crossing the pull threshold): they read them again.
func FollowsTopic(timelineID string) string { return "follows:" + timelineID }

// publishFollowsChanged tells the live updates of timelines that the feeds
// they merge at read time may have changed.
func (s *Service) publishFollowsChanged(ctx context.Context, timelines []string) error {
	if len(timelines) == 0 {
		return nil
	}
	topics := make([]string, len(timelines))
	for i, t := range timelines {
		topics[i] = FollowsTopic(t)
	}
	if err := s.bus.PublishMany(ctx, topics, []byte("{}")); err != nil {
		return fmt.Errorf("feeds: publish follow changes: %w", err)
	}
	return nil
}

// followsChanged tells the live updates of timelines, after a request's
// commit, to read again which feeds they merge at read time.
func (s *Service) followsChanged(ctx context.Context, timelines []string) {
	// The change has committed: tell the streams even if the request that
	// made it ends now.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := s.publishFollowsChanged(ctx, timelines); err != nil {
		s.log.Log(ctx, redisguard.LogLevel(err), "feeds: publish follow changes", "err", err)
	}
}

// accessChanged tells, after a request's commit, the live updates of a
// feed that who may read it may have changed: for user alone (an
// unfollow), or for everyone (user ""; a visibility change). Streams that
// may have lost access check it again and end with FORBIDDEN if so.
func (s *Service) accessChanged(ctx context.Context, feed, user string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	data, err := json.Marshal(feedBusEvent{Access: &accessChange{User: user}})
	if err == nil {
		err = s.bus.PublishRaw(ctx, FeedTopic(feed), data)
	}
	if err != nil {
		s.log.Log(ctx, redisguard.LogLevel(err), "feeds: publish access change", "feed", feed, "err", err)
	}
}

// activityChangeOnce is how long the key of a change published by both a
// request and its job keeps the second publish from going out.
const activityChangeOnce = 10 * time.Minute

// publishActivityChanged announces that an activity's state changed, on
// its own topic: once per key when key is set (a request and its job both
// publish, so the change goes out even if the request's node dies first).
func (s *Service) publishActivityChanged(ctx context.Context, id uuid.UUID, key string) {
	data := []byte(`{"activity":"` + id.String() + `"}`)
	var err error
	if key != "" {
		_, err = s.bus.PublishOnce(ctx, ActivityTopic(id), "feeds.activity:"+key, activityChangeOnce, data)
	} else {
		err = s.bus.PublishRaw(ctx, ActivityTopic(id), data)
	}
	if err != nil {
		s.log.Log(ctx, redisguard.LogLevel(err), "feeds: publish activity change", "activity", id, "err", err)
	}
}

// activityChanged announces, after a request's commit, that an activity's
// state changed (see publishActivityChanged).
func (s *Service) activityChanged(ctx context.Context, id uuid.UUID, key string) {
	// The change has committed: announce it even if the request ends now.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	s.publishActivityChanged(ctx, id, key)
}

// remerged returns a job's after-commit step that tells the live updates
// of timelines to read again which feeds they merge at read time.
func (s *Service) remerged(timelines []string) func(context.Context) {
	if len(timelines) == 0 {
		return nil
	}
	return func(ctx context.Context) {
		if err := s.publishFollowsChanged(ctx, timelines); err != nil {
			s.log.Log(ctx, redisguard.LogLevel(err), "feeds: publish follow changes", "timelines", len(timelines), "err", err)
		}
	}
}

// announce returns a job's after-commit step that publishes an update to
// the feeds' topics, and wakes the workers when the job left more jobs.
func (s *Service) announce(feeds []string, u FeedUpdate, wake bool) func(context.Context) {
	return func(ctx context.Context) {
		if wake {
			if s.wakeRunner != nil {
				s.wakeRunner()
			}
			s.wakeWorkers(ctx)
		}
		if len(feeds) == 0 {
			return
		}
		data, err := json.Marshal(u)
		if err != nil {
			s.log.Error("feeds: encode update", "err", err)
			return
		}
		topics := make([]string, len(feeds))
		for i, f := range feeds {
			topics[i] = FeedTopic(f)
		}
		// Updates are live notifications: the feed rows are committed, and a
		// client that missed one reads the feed again.
		if err := s.bus.PublishMany(ctx, topics, data); err != nil {
			s.log.Log(ctx, redisguard.LogLevel(err), "feeds: publish update", "feeds", len(feeds), "err", err)
		}
	}
}

// wakeWorkers tells the workers of every node that the transaction just
// committed left them a job. It only saves the wait until they next poll.
func (s *Service) wakeWorkers(ctx context.Context) { workers.Wake(ctx, s.bus) }
