package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Message is a chat message. Pos numbers every message of its channel
// (replies included) in send order; Seq is the channel's top-level
// sequence number at the message (its own for a top-level message).
type Message struct {
	ID               uuid.UUID       `json:"id"`
	ChannelID        string          `json:"channel"`
	Pos              int64           `json:"pos"`
	Seq              int64           `json:"seq"`
	UserID           string          `json:"user"`
	Text             string          `json:"text"`
	Type             string          `json:"type"`
	ParentID         *uuid.UUID      `json:"parent,omitempty"`
	ReplyCount       int             `json:"replyCount"`
	MentionedUserIDs []string        `json:"mentioned,omitempty"`
	Data             json.RawMessage `json:"data,omitempty"`
	CreatedAt        time.Time       `json:"createdAt"`
	UpdatedAt        time.Time       `json:"updatedAt"`
	DeletedAt        *time.Time      `json:"deletedAt,omitempty"`
	// QuotedID is the message this one quotes.
	QuotedID *uuid.UUID `json:"quoted,omitempty"`
	// ShowInChannel: a thread reply that also appears in the channel (it
	// has a top-level sequence number of its own).
	ShowInChannel bool `json:"showInChannel,omitempty"`
	// Pin: set while pinned. An expired pin reads as none (Pinned).
	PinnedAt     *time.Time `json:"pinnedAt,omitempty"`
	PinnedByID   *string    `json:"pinnedBy,omitempty"`
	PinExpiresAt *time.Time `json:"pinExpiresAt,omitempty"`
	// Shadowed: sent by a shadow-banned user, visible to it alone.
	Shadowed bool `json:"shadowed,omitempty"`
	// Attachments: files, external links and link previews.
	Attachments []Attachment `json:"attachments,omitempty"`

	// Sender is the author's profile, carried in events so that delivering
	// one costs no query per subscriber.
	Sender *User `json:"sender,omitempty"`
	// Reactions, when not nil, are the message's reaction counts as
	// carried in an event (a new message has none: empty, not nil, which
	// the JSON keeps apart as [] and null).
	Reactions []ReactionCount `json:"reactions"`
	// Own, when not nil, are the reader's own reactions, fetched with a
	// page of messages; never in an event, which every subscriber shares.
	Own []*MessageReaction `json:"-"`

	// Sent is set on a message SendMessage has just sent, with
	// SentRemovals, the channel's MemberRemovals then (what its
	// message.new carries).
	Sent         bool  `json:"-"`
	SentRemovals int64 `json:"-"`
}

// Message types.
const (
	MessageRegular = "regular"
	MessageReply   = "reply"
	MessageDeleted = "deleted"
	MessageSystem  = "system"
)

// Limits on messages.
const (
	// MaxMessageText caps a message's text, in characters.
	MaxMessageText = 5000
	// MaxReactionKinds caps the distinct reaction kinds of one message.
	MaxReactionKinds = 50
)

// Pinned reports whether the message is pinned at now.
func (m *Message) Pinned(now time.Time) bool {
	return m.PinnedAt != nil && (m.PinExpiresAt == nil || m.PinExpiresAt.After(now))
}

// InChannel reports whether the message appears in its channel's history:
// a top-level message (system messages included), or a reply shown there.
func (m *Message) InChannel() bool { return m.ParentID == nil || m.ShowInChannel }

// Counts reports whether the message counts as unread (it has a sequence
// number of its own): a message in the channel's history that is not a
// system message nor shadowed.
func (m *Message) Counts() bool { return m.InChannel() && m.Type != MessageSystem && !m.Shadowed }

// VisibleTo reports whether viewer may see the message: a shadowed one is
// its author's alone.
func (m *Message) VisibleTo(viewer string) bool { return !m.Shadowed || m.UserID == viewer }

// visibleTo is the condition of messages the user $N may see: neither
// shadowed (but its own) nor from a user it blocks.
func visibleTo(n int) string {
	u := fmt.Sprintf("$%d", n)
	return "((NOT shadowed OR user_id = " + u + ") AND NOT " + blockedBy(u, "user_id") + ")"
}

// MessageInput sends a message.
type MessageInput struct {
	ID               *string
	Text             string
	ParentID         *string
	MentionedUserIDs []string
	Data             json.RawMessage
	// QuotedMessageID is a message of the same channel to quote.
	QuotedMessageID *string
	// ShowInChannel shows a thread reply in the channel too.
	ShowInChannel bool
	// Attachments are the client's; Stored is what the product made of
	// them (checked, uploads resolved), the column's value.
	Attachments []AttachmentInput
	Stored      []Attachment
}

const messageColumns = `id, channel_id, pos, seq, user_id, text, type, parent_id, reply_count, mentioned, data, created_at, updated_at, deleted_at, quoted_id, show_in_channel, pinned_at, pinned_by, pin_expires_at, shadowed, attachments`

// inChannel is the condition of messages shown in their channel's history.
const inChannel = `(parent_id IS NULL OR show_in_channel)`

func scanMessage(row pgx.Row) (*Message, error) {
	var m Message
	if err := row.Scan(m.dest()...); err != nil {
		return nil, err
	}
	return &m, nil
}

// dest is where a row of messageColumns scans into.
func (m *Message) dest() []any { return m.appendDest(make([]any, 0, 21)) }

// appendDest appends dest's pointers to d, for a caller that reuses d.
func (m *Message) appendDest(d []any) []any {
	return append(d, &m.ID, &m.ChannelID, &m.Pos, &m.Seq, &m.UserID, &m.Text, &m.Type, &m.ParentID, &m.ReplyCount,
		&m.MentionedUserIDs, &m.Data, &m.CreatedAt, &m.UpdatedAt, &m.DeletedAt,
		&m.QuotedID, &m.ShowInChannel, &m.PinnedAt, &m.PinnedByID, &m.PinExpiresAt, &m.Shadowed, &m.Attachments)
}

func collectMessages(rows pgx.Rows, err error) ([]*Message, error) {
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*Message, error) { return scanMessage(r) })
}

// ChatMessageJob is the payload of the job a sent message leaves in the
// outbox: the unread bookkeeping and the events.
type ChatMessageJob struct {
	MessageID uuid.UUID `json:"message"`
}

// ChatMessageKind is the job kind of ChatMessageJob.
const ChatMessageKind = "chat.message"

// ChatMessageEventKind is the job that publishes a message's message.new
// event again when the publish after its ChatMessageKind job failed (Redis
// away): a live subscriber notices a missing message only when a later one
// arrives, so without it the last message of a conversation could wait for
// the next. Its payload is a ChatMessageJob.
const ChatMessageEventKind = "chat.message_event"

// errSameID says another transaction inserted a message with the id first.
var errSameID = errors.New("store: message id taken")

// CheckMessageInput validates a message before anything is written and
// returns its id (the client's, or a new one), parent and quoted message.
func CheckMessageInput(in MessageInput) (id uuid.UUID, parent, quoted *uuid.UUID, err error) {
	id, parent, err = checkMessageInput(in)
	if err != nil {
		return uuid.Nil, nil, nil, err
	}
	if in.ShowInChannel && parent == nil {
		return uuid.Nil, nil, nil, Invalid("input.showInChannel", "only a thread reply (with parentId) can be shown in the channel too")
	}
	if in.QuotedMessageID != nil {
		q, err := ParseID("input.quotedMessageId", *in.QuotedMessageID)
		if err != nil {
			return uuid.Nil, nil, nil, err
		}
		if q == id {
			return uuid.Nil, nil, nil, Invalid("input.quotedMessageId", "a message cannot quote itself")
		}
		quoted = &q
	}
	return id, parent, quoted, nil
}

func checkMessageInput(in MessageInput) (uuid.UUID, *uuid.UUID, error) {
	id := NewID()
	if in.ID != nil {
		var err error
		if id, err = ParseID("input.id", *in.ID); err != nil {
			return uuid.Nil, nil, err
		}
	}
	if err := CheckText("input.text", in.Text, MaxMessageText); err != nil {
		return uuid.Nil, nil, err
	}
	if strings.TrimSpace(in.Text) == "" {
		return uuid.Nil, nil, Invalid("input.text", "must not be empty")
	}
	var parent *uuid.UUID
	if in.ParentID != nil {
		p, err := ParseID("input.parentId", *in.ParentID)
		if err != nil {
			return uuid.Nil, nil, err
		}
		parent = &p
	}
	if err := checkUserList("input.mentionedUserIds", in.MentionedUserIDs); err != nil {
		return uuid.Nil, nil, err
	}
	return id, parent, CheckData("input.data", in.Data)
}

// ErrNotChannelMember means a member's message found it no longer a member
// of the channel when it was written.
var ErrNotChannelMember = errors.New("store: not a member of the channel")

// ErrBanned means a message found its sender banned from the channel.
var ErrBanned = errors.New("store: banned")

// ErrChannelFrozen means a message found its channel frozen when it was
// written, and its sender not exempt.
var ErrChannelFrozen = errors.New("store: the channel is frozen")

// CooldownError refuses a member's message in slow mode: its previous one
// was sent less than the channel's cooldown ago.
type CooldownError struct {
	// Wait is how long until the member may send again.
	Wait time.Duration
}

func (e *CooldownError) Error() string {
	return fmt.Sprintf("store: slow mode: wait %s", e.Wait)
}

// SendAs says how a sender writes to a channel.
type SendAs struct {
	// Member: the sender writes as a member (not as an admin who is
	// none): the transaction locks its membership first, and a sender
	// removed meanwhile gets ErrNotChannelMember with nothing written.
	Member bool
	// Moderator: exempt from a freeze and from slow mode (owners,
	// moderators, admins).
	Moderator bool
}

// SendMessage stores a message in one transaction: it takes the channel's
// next position (and sequence number, for a top-level message) with an
// UPDATE that locks the channel row, so positions commit in order; inserts
// the message; marks the channel read for the sender; and leaves a
// chat.message job in the outbox; a thread reply also keeps the thread's
// participants (threads.go). A message id sent again by the same user
// to the same channel with the same text returns the stored message
// (created false); any other reuse of an id is a Conflict. A frozen
// channel (ErrChannelFrozen) and slow mode (CooldownError) refuse a
// sender that is no moderator, read from the rows the send locks anyway:
// they cost no statement.
func (s *Store) SendMessage(ctx context.Context, channelID, userID string, as SendAs, in MessageInput) (msg *Message, created bool, err error) {
	id, parent, quoted, err := CheckMessageInput(in)
	if err != nil {
		return nil, false, err
	}
	for attempt := 0; attempt < 2; attempt++ {
		err = s.InTx(ctx, func(tx *Store) error {
			msg, created = nil, false
			existing, err := scanMessage(tx.db.QueryRow(ctx, `SELECT `+messageColumns+` FROM messages WHERE id = $1`, id))
			if err == nil {
				msg = existing
				return nil
			}
			if !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
			// The sender's membership row before the channel's, in the order
			// a removal locks them; FOR UPDATE, as the row's read position is
			// written below (two shared holders could not both upgrade).
			var lastSent *time.Time
			var now time.Time
			var ban *bool // nil: none; true: shadow
			var blocked bool
			if as.Member {
				err := tx.db.QueryRow(ctx, `SELECT last_sent_at, now(), `+banOf("$1", "$2")+`, `+blockedInPair("$1", "$2")+`
					FROM channel_members WHERE channel_id = $1 AND user_id = $2 FOR UPDATE`,
					channelID, userID).Scan(&lastSent, &now, &ban, &blocked)
				if errors.Is(err, pgx.ErrNoRows) {
					return ErrNotChannelMember
				}
				if err != nil {
					return err
				}
			}
			if ban != nil && !*ban {
				return ErrBanned
			}
			if blocked {
				return ErrBlocked
			}
			shadowed := ban != nil // a shadow ban: visible to the sender alone, counted for no one
			typ := MessageRegular
			var thread *threadParent
			if parent != nil {
				typ = MessageReply
				if thread, err = tx.replyTo(ctx, *parent, channelID, shadowed); err != nil {
					return err
				}
			}
			if quoted != nil {
				// Only when quoting: the common send costs no statement more.
				var one int
				err := tx.db.QueryRow(ctx, `SELECT 1 FROM messages WHERE id = $1 AND channel_id = $2`, *quoted, channelID).Scan(&one)
				if errors.Is(err, pgx.ErrNoRows) {
					return Invalid("input.quotedMessageId", "message %s is not in channel %q", *quoted, channelID)
				}
				if err != nil {
					return err
				}
			}
			top := int64(0)
			if (parent == nil || in.ShowInChannel) && !shadowed {
				top = 1
			}
			// A thread reply takes a position but is not the channel's
			// last message: it neither moves the channel up the list nor
			// becomes its preview (unless shown in the channel too).
			var pos, seq, removals int64
			var frozen bool
			var cooldown int
			err = tx.db.QueryRow(ctx, `
				UPDATE channels SET last_pos = last_pos + 1, last_seq = last_seq + $2,
					last_message_id = CASE WHEN $2 = 1 THEN $3 ELSE last_message_id END,
					last_message_at = CASE WHEN $2 = 1 THEN now() ELSE last_message_at END
				WHERE id = $1 RETURNING last_pos, last_seq, member_removals, frozen, cooldown_seconds`, channelID, top, id).
				Scan(&pos, &seq, &removals, &frozen, &cooldown)
			if errors.Is(err, pgx.ErrNoRows) {
				return NotFound("channel", channelID)
			}
			if err != nil {
				return err
			}
			// Checked on the locked rows, so a freeze or a cooldown that
			// committed before this send holds; the update rolls back.
			if !as.Moderator {
				if frozen {
					return ErrChannelFrozen
				}
				if cooldown > 0 && lastSent != nil {
					if wait := time.Duration(cooldown)*time.Second - now.Sub(*lastSent); wait > 0 {
						return &CooldownError{Wait: wait}
					}
				}
			}
			stored := in.Stored
			if HasUploads(stored) {
				// Only with uploads: the common send costs no statement more.
				// A copy: a retry of this transaction attaches them anew.
				stored = slices.Clone(stored)
				if err := tx.attachUploads(ctx, userID, "message:"+id.String(), "input.attachments", stored); err != nil {
					return err
				}
			}
			m, err := scanMessage(tx.db.QueryRow(ctx, `
				INSERT INTO messages (id, channel_id, pos, seq, user_id, text, type, parent_id, mentioned, data, quoted_id, show_in_channel, shadowed, attachments)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
				ON CONFLICT (id) DO NOTHING
				RETURNING `+messageColumns, id, channelID, pos, seq, userID, in.Text, typ, parent, in.MentionedUserIDs, in.Data, quoted, in.ShowInChannel, shadowed, attachmentsValue(stored)))
			if errors.Is(err, pgx.ErrNoRows) {
				return errSameID
			}
			if err != nil {
				return err
			}
			if thread != nil {
				// Only for a reply: the common send costs no statement more.
				if err := tx.recordReply(ctx, thread, userID, as.Member, pos, shadowed); err != nil {
					return err
				}
			}
			if _, err := tx.db.Exec(ctx, `
				UPDATE channel_members SET last_read_seq = greatest(last_read_seq, $3), last_read_at = now(), last_read_message_id = $4,
					last_sent_at = now()
				WHERE channel_id = $1 AND user_id = $2`, channelID, userID, seq, id); err != nil {
				return err
			}
			if _, err := tx.EnqueueJob(ctx, ChatMessageKind, ChatMessageJob{MessageID: id}); err != nil {
				return err
			}
			m.Sent, m.SentRemovals = true, removals
			msg, created = m, true
			return nil
		})
		if !errors.Is(err, errSameID) {
			break
		}
	}
	if err != nil {
		var cool *CooldownError
		if errors.Is(err, ErrInvalid) || errors.Is(err, ErrNotFound) || errors.Is(err, ErrNotChannelMember) ||
			errors.Is(err, ErrChannelFrozen) || errors.Is(err, ErrBanned) || errors.As(err, &cool) {
			return nil, false, err
		}
		return nil, false, fmt.Errorf("store: send message: %w", err)
	}
	if created {
		// Its message.new event carries the author's profile. (Read after
		// the commit, as the event is published: a profile edited in
		// between is the newer one.)
		if msg.Sender, err = s.User(ctx, userID); err != nil {
			s.log.Warn("chat: load a message's sender for its event", "message", msg.ID, "err", err)
		}
		msg.Reactions = []ReactionCount{}
	}
	if !created {
		// A retry: the same sender, channel and thread, and the same text
		// unless the message was edited or deleted since (its text then
		// says nothing about what was sent).
		changed := msg.DeletedAt != nil || !msg.UpdatedAt.Equal(msg.CreatedAt)
		sameThread := (msg.ParentID == nil) == (parent == nil) && (parent == nil || *msg.ParentID == *parent)
		if msg.UserID != userID || msg.ChannelID != channelID || !sameThread || (msg.Text != in.Text && !changed) {
			return nil, false, Conflict("message id %s is already taken by another message; send a new id", id)
		}
	}
	return msg, created, nil
}

// MessagesByID returns messages by id, in order, with nil where none exists.
func (s *Store) MessagesByID(ctx context.Context, ids []uuid.UUID) ([]*Message, error) {
	// A deleted channel's messages read as none, like the channel.
	found, err := collectMessages(s.db.Query(ctx, `SELECT `+messageColumns+` FROM messages WHERE id = ANY($1)
		AND NOT EXISTS (SELECT 1 FROM channels c WHERE c.id = messages.channel_id AND c.deleted_at IS NOT NULL)`, ids))
	if err != nil {
		return nil, fmt.Errorf("store: messages by id: %w", err)
	}
	return inOrder(ids, found, func(m *Message) uuid.UUID { return m.ID }), nil
}

// Message returns one message, or NotFound.
func (s *Store) Message(ctx context.Context, id uuid.UUID) (*Message, error) {
	m, err := s.MessagesByID(ctx, []uuid.UUID{id})
	if err != nil {
		return nil, err
	}
	if m[0] == nil {
		return nil, NotFound("message", id.String())
	}
	return m[0], nil
}

// UpdateMessage changes a message's text and data (nil data keeps it).
func (s *Store) UpdateMessage(ctx context.Context, id uuid.UUID, text string, data json.RawMessage) (*Message, error) {
	if err := CheckText("text", text, MaxMessageText); err != nil {
		return nil, err
	}
	if strings.TrimSpace(text) == "" {
		return nil, Invalid("text", "must not be empty")
	}
	if err := CheckData("data", data); err != nil {
		return nil, err
	}
	m, err := scanMessage(s.db.QueryRow(ctx, `
		UPDATE messages SET text = $2, data = coalesce($3, data), updated_at = now()
		WHERE id = $1 AND deleted_at IS NULL RETURNING `+messageColumns, id, text, data))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, Conflict("message %s is deleted", id)
	}
	if err != nil {
		return nil, fmt.Errorf("store: update message: %w", err)
	}
	return m, nil
}

// DeleteMessage soft-deletes a message: the row stays with type deleted
// and empty text. Unread counts do not change. Deleting twice is a no-op:
// the message comes back as it is, and deleted is false.
//
// Its attachments go too; the files uploaded for it are queued for
// removal (releaseUploads).
func (s *Store) DeleteMessage(ctx context.Context, id uuid.UUID) (m *Message, deleted bool, err error) {
	err = s.InTx(ctx, func(tx *Store) error {
		var err error
		m, err = scanMessage(tx.db.QueryRow(ctx, `
			UPDATE messages SET text = '', type = 'deleted', mentioned = NULL, data = NULL, quoted_id = NULL,
				pinned_at = NULL, pinned_by = NULL, pin_expires_at = NULL, deleted_at = now(), updated_at = now(), attachments = NULL
			WHERE id = $1 AND deleted_at IS NULL RETURNING `+messageColumns, id))
		if err != nil {
			return err
		}
		return tx.releaseUploads(ctx, "message:"+id.String())
	})
	if errors.Is(err, pgx.ErrNoRows) {
		m, err = s.Message(ctx, id)
		return m, false, err
	}
	if err != nil {
		return nil, false, fmt.Errorf("store: delete message: %w", err)
	}
	return m, true, nil
}

// SearchMessages finds messages whose text matches query (all its words),
// newest first (by the time they were sent: a client may choose any id),
// in the given channels or, when channels is nil, in the user's channels.
// The position is the message id.
func (s *Store) SearchMessages(ctx context.Context, userID, query string, channel *string, first int, after string) (Page[*Message], error) {
	if err := CheckText("query", query, 200); err != nil {
		return Page[*Message]{}, err
	}
	if strings.TrimSpace(query) == "" {
		return Page[*Message]{}, Invalid("query", "must not be empty")
	}
	var afterID *uuid.UUID
	if after != "" {
		id, err := ParseID("after", after)
		if err != nil {
			return Page[*Message]{}, err
		}
		afterID = &id
	}
	found, err := collectMessages(s.db.Query(ctx, `
		SELECT `+messageColumns+` FROM messages
		WHERE to_tsvector('simple', text) @@ plainto_tsquery('simple', $2)
		  AND deleted_at IS NULL AND `+visibleTo(1)+`
		  AND CASE WHEN $3::text IS NULL
		      THEN channel_id IN (SELECT m.channel_id FROM channel_members m JOIN channels d ON d.id = m.channel_id
		                          WHERE m.user_id = $1 AND d.deleted_at IS NULL)
		      ELSE channel_id = $3 END
		  AND ($4::uuid IS NULL OR EXISTS (SELECT 1 FROM messages c
		      WHERE c.id = $4 AND (messages.created_at, messages.id) < (c.created_at, c.id)))
		ORDER BY created_at DESC, id DESC LIMIT $5`, userID, query, channel, afterID, first+1))
	if err != nil {
		return Page[*Message]{}, fmt.Errorf("store: search messages: %w", err)
	}
	return PageOf(found, first), nil
}

// ChatMessageFacts loads what the chat.message job needs: the message with
// its sender (nil when the user is gone), its channel and the channel's
// members, in one round trip (the job is on the way from a send to its
// subscribers). A message that no longer exists (its channel was deleted)
// returns nil.
func (s *Store) ChatMessageFacts(ctx context.Context, id uuid.UUID) (*Message, *Channel, []string, error) {
	b := &pgx.Batch{}
	b.Queue(`SELECT `+messageColumns+` FROM messages WHERE id = $1`, id)
	b.Queue(`SELECT `+userColumns+` FROM users WHERE id = (SELECT user_id FROM messages WHERE id = $1)`, id)
	b.Queue(`SELECT `+channelColumns+` FROM channels WHERE id = (SELECT channel_id FROM messages WHERE id = $1)`, id)
	b.Queue(`SELECT user_id FROM channel_members WHERE channel_id = (SELECT channel_id FROM messages WHERE id = $1)`, id)
	br := s.db.SendBatch(ctx, b)
	defer br.Close()
	fail := func(err error) (*Message, *Channel, []string, error) {
		return nil, nil, nil, fmt.Errorf("store: chat message job: %w", err)
	}
	m, err := scanMessage(br.QueryRow())
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil, nil, nil
	}
	if err != nil {
		return fail(err)
	}
	if m.Sender, err = scanUser(br.QueryRow()); err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fail(err)
	}
	c, err := scanChannel(br.QueryRow())
	if err != nil {
		return fail(err)
	}
	rows, err := br.Query()
	if err != nil {
		return fail(err)
	}
	members, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fail(err)
	}
	if err := br.Close(); err != nil {
		return fail(err)
	}
	return m, c, members, nil
}
