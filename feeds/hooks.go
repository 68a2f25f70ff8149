package feeds

import (
	"encoding/json"
	"time"

	"github.com/brookhq/brook/store"
	"github.com/google/uuid"
)

// Webhook payloads of feeds' events. The store's rows have no JSON names
// (nodes exchange them in events under their Go names, and changing those
// would break a rolling deploy), so a receiver gets these instead: the
// GraphQL type's field names, in the shape chat's messages have, with ids
// for the users and feeds a field points to.

// activityHook is an activity in a webhook payload.
type activityHook struct {
	ID           uuid.UUID          `json:"id"`
	Origin       string             `json:"origin"`
	Actor        string             `json:"actor"`
	Verb         string             `json:"verb"`
	Object       string             `json:"object"`
	Target       *string            `json:"target,omitempty"`
	ForeignID    *string            `json:"foreignId,omitempty"`
	Time         time.Time          `json:"time"`
	Data         json.RawMessage    `json:"data,omitempty"`
	To           []string           `json:"to"`
	CommentCount int                `json:"commentCount"`
	Attachments  []store.Attachment `json:"attachments,omitempty"`
	CreatedAt    time.Time          `json:"createdAt"`
	UpdatedAt    time.Time          `json:"updatedAt"`
}

func activityHookOf(a *store.Activity) *activityHook {
	to := a.To
	if to == nil {
		to = []string{}
	}
	return &activityHook{ID: a.ID, Origin: a.FeedID, Actor: a.ActorID, Verb: a.Verb, Object: a.Object, Target: a.Target,
		ForeignID: a.ForeignID, Time: a.Time, Data: a.Data, To: to, CommentCount: a.CommentCount,
		Attachments: a.Attachments, CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt}
}

// commentHook is a comment in a webhook payload.
type commentHook struct {
	ID            uuid.UUID       `json:"id"`
	Activity      uuid.UUID       `json:"activity"`
	Parent        *uuid.UUID      `json:"parent,omitempty"`
	Depth         int             `json:"depth"`
	User          string          `json:"user"`
	Text          string          `json:"text"`
	Data          json.RawMessage `json:"data,omitempty"`
	Mentioned     []string        `json:"mentioned,omitempty"`
	ReplyCount    int             `json:"replyCount"`
	ReactionCount int             `json:"reactionCount"`
	CreatedAt     time.Time       `json:"createdAt"`
	UpdatedAt     time.Time       `json:"updatedAt"`
}

func commentHookOf(c *store.Comment) *commentHook {
	return &commentHook{ID: c.ID, Activity: c.ActivityID, Parent: c.ParentID, Depth: c.Depth, User: c.UserID, Text: c.Text,
		Data: c.Data, Mentioned: c.Mentions, ReplyCount: c.ReplyCount, ReactionCount: c.ReactionCount,
		CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt}
}

// followHook is a follow (or a request to follow) in a webhook payload.
type followHook struct {
	Source    string    `json:"source"`
	Target    string    `json:"target"`
	Status    string    `json:"status"`
	CreatedAt time.Time `json:"createdAt"`
}

func followHookOf(f *store.Follow) *followHook {
	return &followHook{Source: f.SourceID, Target: f.TargetID, Status: string(f.Status), CreatedAt: f.CreatedAt}
}
