package feeds

import (
	"context"
	"encoding/json"
	"errors"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/brookhq/brook/internal/auth"
	"github.com/brookhq/brook/internal/redisguard"
	"github.com/brookhq/brook/store"
	"github.com/brookhq/brook/webhooks"
)

// Notifications of comments and reactions. Jobs write them after the
// comment or reaction commits: an activity by the commenter (or reactor)
// in the notified user's notification feed, grouped there by verb and day
// like any notification. Each is written once per key (feed_notified), so
// a retried job writes none twice.

// notice is one notification a job writes.
type notice struct {
	user, verb, object, target, key string
	data                            json.RawMessage
}

// notify writes notices by actor, each once per key, in the job's
// transaction, and returns the after-commit step that announces them in
// their feeds.
func (s *Service) notify(ctx context.Context, tx *store.Store, actor string, notices []notice) (func(context.Context), error) {
	var steps []func(context.Context)
	for _, n := range notices {
		f := &store.Feed{ID: store.GroupNotification + ":" + n.user, Group: store.GroupNotification, OwnerID: n.user, Kind: store.FeedNotification}
		fresh, err := tx.NotifyOnce(ctx, f, n.key)
		if err != nil || !fresh {
			if err != nil {
				return nil, err
			}
			continue
		}
		target := n.target
		a, _, err := tx.AddActivity(ctx, store.NewID(), f, actor, store.ActivityInput{
			Verb: n.verb, Object: n.object, Target: &target, Data: n.data, To: []string{}})
		if err != nil {
			return nil, err
		}
		steps = append(steps, s.announce([]string{f.ID}, FeedUpdate{Added: []*store.Activity{a}}, false))
	}
	return func(ctx context.Context) {
		for _, step := range steps {
			step(ctx)
		}
	}, nil
}

// commentJob notifies the activity's actor (comment) and the mentioned
// users (mention) of a new comment, and announces it to commentAdded
// (and the activity's new comment count, unless the request did) after
// the commit. No one is notified of their own comment, the actor gets one
// notification even when mentioned, and a mentioned user who may not read
// the activity gets none.
func (s *Service) commentJob(ctx context.Context, tx *store.Store, j store.CommentJob) (func(context.Context), error) {
	cs, err := tx.CommentsByID(ctx, []uuid.UUID{j.Comment})
	if err != nil || cs[0] == nil {
		return nil, err // deleted meanwhile: nothing to say
	}
	c := cs[0]
	acts, err := tx.ActivitiesByID(ctx, []uuid.UUID{j.Activity})
	if err != nil || acts[0] == nil {
		return nil, err
	}
	a := acts[0]
	if err := s.hooks.Emit(ctx, tx, webhooks.Event{Type: "comment.new", Key: "feed:" + a.FeedID, At: c.CreatedAt,
		Payload: map[string]any{"feed": a.FeedID, "activity": a.ID, "comment": commentHookOf(c)}}); err != nil {
		return nil, err
	}
	data, err := json.Marshal(map[string]string{"text": snippet(c.Text, 200), "comment": c.ID.String(), "activity": a.ID.String()})
	if err != nil {
		return nil, err
	}
	object, target := "comment:"+c.ID.String(), "activity:"+a.ID.String()
	var notices []notice
	if a.ActorID != c.UserID {
		notices = append(notices, notice{a.ActorID, "comment", object, target, "comment:" + c.ID.String(), data})
	}
	for _, m := range c.Mentions {
		if m == c.UserID || m == a.ActorID {
			continue
		}
		// The notice carries the comment's text: a mentioned user who may
		// not read the activity (a stranger to a FOLLOWERS feed, a pending
		// follower) is not told of it.
		if err := s.checkActivityRead(ctx, auth.Identity{UserID: m}, a, nil); errors.Is(err, auth.ErrForbidden) {
			continue
		} else if err != nil {
			return nil, err
		}
		notices = append(notices, notice{m, "mention", object, target, "mention:" + c.ID.String(), data})
	}
	announce, err := s.notify(ctx, tx, c.UserID, notices)
	if err != nil {
		return nil, err
	}
	event, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) {
		announce(ctx)
		if err := s.bus.PublishRaw(ctx, CommentsTopic(a.ID), event); err != nil {
			s.log.Log(ctx, redisguard.LogLevel(err), "feeds: publish comment", "err", err)
		}
		// Unless the request that added it did already.
		s.publishActivityChanged(ctx, a.ID, commentChangeKey(c.ID))
	}, nil
}

// reactionJob notifies an activity's actor of a reaction to it (verb: the
// reaction's kind), once per (user, activity, kind): removing a reaction
// and adding it again notifies no one again. After its commit it announces
// the activity's change, unless the request that added it did.
func (s *Service) reactionJob(ctx context.Context, tx *store.Store, j store.ReactionJob) (func(context.Context), error) {
	acts, err := tx.ActivitiesByID(ctx, []uuid.UUID{j.Activity})
	if err != nil || acts[0] == nil {
		return nil, err
	}
	a := acts[0]
	// At is when the reaction was made (its id's time), not when this job
	// runs: a reaction.deleted emitted meanwhile comes after it.
	if err := s.hooks.Emit(ctx, tx, webhooks.Event{Type: "reaction.new", Key: "feed:" + a.FeedID, At: idTime(j.Reaction),
		Payload: map[string]any{"feed": a.FeedID, "activity": a.ID, "reaction": map[string]any{"id": j.Reaction, "kind": j.Kind, "user": j.User}}}); err != nil {
		return nil, err
	}
	// Unless the request that added it did already.
	changed := func(ctx context.Context) { s.publishActivityChanged(ctx, a.ID, reactionChangeKey(j.Reaction)) }
	if a.ActorID == j.User {
		return changed, nil
	}
	data, err := json.Marshal(map[string]string{"reaction": j.Reaction.String(), "activity": a.ID.String()})
	if err != nil {
		return nil, err
	}
	target := "activity:" + a.ID.String()
	announce, err := s.notify(ctx, tx, j.User, []notice{{a.ActorID, j.Kind, "reaction:" + j.Reaction.String(), target,
		"reaction:" + j.Kind + ":" + a.ID.String() + ":" + j.User, data}})
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) {
		announce(ctx)
		changed(ctx)
	}, nil
}

// snippet is s cut to at most n characters.
func snippet(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n]) + "…"
}

// idTime is when a store.NewID (a UUIDv7) was made; now for any other id.
func idTime(id uuid.UUID) time.Time {
	if id.Version() != 7 {
		return time.Now()
	}
	sec, nsec := id.Time().UnixTime()
	return time.Unix(sec, nsec)
}
