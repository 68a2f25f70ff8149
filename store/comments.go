package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Comment is a comment on an activity, or a reply to another comment.
type Comment struct {
	ID         uuid.UUID
	ActivityID uuid.UUID
	// ParentID is the comment this one replies to; nil on the activity.
	ParentID *uuid.UUID
	// Depth is 1 for a comment on the activity, its parent's + 1 for a reply.
	Depth         int
	UserID        string
	Text          string
	Data          json.RawMessage
	Mentions      []string
	ReplyCount    int
	ReactionCount int
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// CommentInput is a new comment.
type CommentInput struct {
	Text     string
	ParentID *uuid.UUID
	Mentions []string
	Data     json.RawMessage
}

// CommentSort orders a page of comments.
type CommentSort string

// Comment orders: newest first, oldest first, and most reactions and
// replies first (then newest).
const (
	CommentsNewest CommentSort = "NEWEST"
	CommentsOldest CommentSort = "OLDEST"
	CommentsTop    CommentSort = "TOP"
)

// Limits on comments.
const (
	// MaxCommentText caps a comment's text, in characters.
	MaxCommentText = 10_000
	// MaxMentions caps the users one comment mentions.
	MaxMentions = 20
)

// JobFeedComment is the job that follows a new comment: it notifies the
// activity's actor and the mentioned users and announces the comment.
const JobFeedComment = "feed.comment"

// CommentJob is the payload of JobFeedComment.
type CommentJob struct {
	Comment  uuid.UUID `json:"comment"`
	Activity uuid.UUID `json:"activity"`
}

const commentColumns = `id, activity_id, parent_id, depth, user_id, text, data, mentions, reply_count, reaction_count, created_at, updated_at`

func scanComment(row pgx.Row) (*Comment, error) {
	var c Comment
	err := row.Scan(&c.ID, &c.ActivityID, &c.ParentID, &c.Depth, &c.UserID, &c.Text, &c.Data, &c.Mentions,
		&c.ReplyCount, &c.ReactionCount, &c.CreatedAt, &c.UpdatedAt)
	if err != nil {
		return nil, err
	}
	return &c, nil
}

func scanCommentRow(row pgx.CollectableRow) (*Comment, error) { return scanComment(row) }

// CheckCommentInput validates a new comment before anything is written:
// its text, data and mentions (distinct valid user ids, at most
// MaxMentions); it drops repeated mentions.
func CheckCommentInput(in *CommentInput) error {
	if strings.TrimSpace(in.Text) == "" {
		return Invalid("text", "must not be empty")
	}
	if err := CheckText("text", in.Text, MaxCommentText); err != nil {
		return err
	}
	if err := CheckData("data", in.Data); err != nil {
		return err
	}
	if len(in.Mentions) > MaxMentions {
		return Invalid("mentionedUserIds", "at most %d users", MaxMentions)
	}
	seen := map[string]bool{}
	mentions := make([]string, 0, len(in.Mentions))
	for i, u := range in.Mentions {
		if err := CheckUserID(fmt.Sprintf("mentionedUserIds[%d]", i), u); err != nil {
			return err
		}
		if !seen[u] {
			seen[u] = true
			mentions = append(mentions, u)
		}
	}
	in.Mentions = mentions
	return nil
}

// AddComment writes a comment by userID on an activity, or a reply when
// in.ParentID is set, with the job that follows it, in one transaction
// that also counts it: the activity's comment count and the parent's
// reply count. A reply deeper than maxDepth is refused. The activity's row
// is locked first, so every comment write of one activity takes its turn
// and the counts stay exact.
func (s *Store) AddComment(ctx context.Context, activityID uuid.UUID, userID string, in CommentInput, maxDepth int) (*Comment, error) {
	var out *Comment
	err := s.InTx(ctx, func(tx *Store) error {
		tag, err := tx.db.Exec(ctx, `UPDATE activities SET comment_count = comment_count + 1 WHERE id = $1`, activityID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return NotFound("activity", activityID.String())
		}
		if len(in.Mentions) > 0 {
			missing, err := tx.missingUsers(ctx, in.Mentions)
			if err != nil {
				return err
			}
			if missing != "" {
				return NotFound("user", missing)
			}
		}
		depth := 1
		if in.ParentID != nil {
			err := tx.db.QueryRow(ctx, `UPDATE comments SET reply_count = reply_count + 1
				WHERE id = $1 AND activity_id = $2 RETURNING depth + 1`, *in.ParentID, activityID).Scan(&depth)
			if errors.Is(err, pgx.ErrNoRows) {
				return NotFound("comment", in.ParentID.String())
			}
			if err != nil {
				return err
			}
			if depth > maxDepth {
				return Invalid("parentId", "threads are at most %d comments deep: reply to a comment higher up", maxDepth)
			}
		}
		id := NewID()
		at := idTime(id)
		mentions := in.Mentions
		if mentions == nil {
			mentions = []string{}
		}
		c, err := scanComment(tx.db.QueryRow(ctx, `INSERT INTO comments (`+commentColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, 0, $9, $9) RETURNING `+commentColumns,
			id, activityID, in.ParentID, depth, userID, in.Text, in.Data, mentions, at))
		if err != nil {
			return err
		}
		out = c
		_, err = tx.EnqueueJob(ctx, JobFeedComment, CommentJob{Comment: c.ID, Activity: activityID})
		return err
	})
	if err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrInvalid) {
		return nil, fmt.Errorf("store: add comment: %w", err)
	}
	return out, err
}

// missingUsers returns the first of ids that names no user, or "".
func (s *Store) missingUsers(ctx context.Context, ids []string) (string, error) {
	var missing *string
	err := s.db.QueryRow(ctx, `SELECT u FROM unnest($1::text[]) WITH ORDINALITY AS t(u, n)
		WHERE NOT EXISTS (SELECT 1 FROM users WHERE id = t.u) ORDER BY n LIMIT 1`, ids).Scan(&missing)
	if errors.Is(err, pgx.ErrNoRows) || missing == nil {
		return "", nil
	}
	return *missing, err
}

// CommentsByID returns comments in the order of ids (nil where none).
func (s *Store) CommentsByID(ctx context.Context, ids []uuid.UUID) ([]*Comment, error) {
	rows, err := s.db.Query(ctx, `SELECT `+commentColumns+` FROM comments WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("store: comments by id: %w", err)
	}
	cs, err := pgx.CollectRows(rows, scanCommentRow)
	if err != nil {
		return nil, fmt.Errorf("store: comments by id: %w", err)
	}
	return inOrder(ids, cs, func(c *Comment) uuid.UUID { return c.ID }), nil
}

// UpdateComment replaces a comment's text, and its data unless data is nil.
func (s *Store) UpdateComment(ctx context.Context, id uuid.UUID, text *string, data json.RawMessage) (*Comment, error) {
	c, err := scanComment(s.db.QueryRow(ctx, `UPDATE comments SET text = coalesce($2, text),
		data = CASE WHEN $3::jsonb IS NULL THEN data ELSE $3 END, updated_at = now()
		WHERE id = $1 RETURNING `+commentColumns, id, text, data))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, NotFound("comment", id.String())
	}
	if err != nil {
		return nil, fmt.Errorf("store: update comment: %w", err)
	}
	return c, nil
}

// DeleteComment deletes a comment with its replies, at every depth, and
// their reactions, and uncounts them, in one transaction. It returns how
// many comments went.
func (s *Store) DeleteComment(ctx context.Context, c *Comment) (int, error) {
	var n int
	err := s.InTx(ctx, func(tx *Store) error {
		// The activity's row first: a reply added meanwhile is in the
		// subtree read next, or waits and finds its parent gone.
		if _, err := tx.db.Exec(ctx, `SELECT 1 FROM activities WHERE id = $1 FOR UPDATE`, c.ActivityID); err != nil {
			return err
		}
		rows, err := tx.db.Query(ctx, `
			WITH RECURSIVE sub AS (
				SELECT id FROM comments WHERE id = $1
				UNION ALL
				SELECT c.id FROM comments c JOIN sub ON c.activity_id = $2 AND c.parent_id = sub.id)
			DELETE FROM comments WHERE id IN (SELECT id FROM sub) RETURNING id`, c.ID, c.ActivityID)
		if err != nil {
			return err
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
		if err != nil {
			return err
		}
		n = len(ids)
		if n == 0 {
			return NotFound("comment", c.ID.String())
		}
		if _, err := tx.db.Exec(ctx, `UPDATE activities SET comment_count = greatest(comment_count - $2, 0) WHERE id = $1`,
			c.ActivityID, n); err != nil {
			return err
		}
		if c.ParentID != nil {
			if _, err := tx.db.Exec(ctx, `UPDATE comments SET reply_count = greatest(reply_count - 1, 0) WHERE id = $1`,
				*c.ParentID); err != nil {
				return err
			}
		}
		if _, err := tx.db.Exec(ctx, `DELETE FROM comment_reactions WHERE comment_id = ANY($1)`, ids); err != nil {
			return err
		}
		_, err = tx.db.Exec(ctx, `DELETE FROM comment_reaction_counts WHERE comment_id = ANY($1)`, ids)
		return err
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		return 0, fmt.Errorf("store: delete comment: %w", err)
	}
	return n, err
}

// CommentPage is where a page of comments starts: after the comment with
// ID, which for the TOP order had Score.
type CommentPage struct {
	Sort  CommentSort
	After uuid.UUID
	Score int
	First int
}

// ParseCommentCursor reads a position made by CommentCursor for sort.
func ParseCommentCursor(sort CommentSort, pos string) (uuid.UUID, int, error) {
	bad := Invalid("after", "is not a cursor of this list in %s order; pass an endCursor from a previous page", sort)
	score := 0
	if sort == CommentsTop {
		s, rest, ok := strings.Cut(pos, "/")
		if !ok {
			return uuid.Nil, 0, bad
		}
		var err error
		if score, err = strconv.Atoi(s); err != nil {
			return uuid.Nil, 0, bad
		}
		pos = rest
	}
	id, err := uuid.Parse(pos)
	if err != nil {
		return uuid.Nil, 0, bad
	}
	return id, score, nil
}

// CommentCursor is a comment's position in a page of sort.
func CommentCursor(sort CommentSort, c *Comment) string {
	if sort == CommentsTop {
		return strconv.Itoa(c.ReplyCount+c.ReactionCount) + "/" + c.ID.String()
	}
	return c.ID.String()
}

// Comments returns a page of an activity's comments (parent nil) or of a
// comment's replies. In the TOP order a comment whose score changes while
// a client pages may move across the cursor: it is then shown twice or
// not at all, as with any order by a changing value.
func (s *Store) Comments(ctx context.Context, activityID uuid.UUID, parent *uuid.UUID, p CommentPage) (Page[*Comment], error) {
	var args []any
	arg := func(v any) string { args = append(args, v); return "$" + strconv.Itoa(len(args)) }
	where := `activity_id = ` + arg(activityID)
	if parent != nil {
		where += ` AND parent_id = ` + arg(*parent)
	} else {
		where += ` AND parent_id IS NULL`
	}
	var order string
	switch p.Sort {
	case CommentsOldest:
		if p.After != uuid.Nil {
			where += ` AND id > ` + arg(p.After)
		}
		order = `id`
	case CommentsTop:
		if p.After != uuid.Nil {
			where += ` AND (reaction_count + reply_count, id) < (` + arg(p.Score) + `::bigint, ` + arg(p.After) + `::uuid)`
		}
		order = `reaction_count + reply_count DESC, id DESC`
	default:
		if p.After != uuid.Nil {
			where += ` AND id < ` + arg(p.After)
		}
		order = `id DESC`
	}
	rows, err := s.reader(ctx).Query(ctx, `SELECT `+commentColumns+` FROM comments WHERE `+where+
		` ORDER BY `+order+` LIMIT `+arg(p.First+1), args...)
	if err != nil {
		return Page[*Comment]{}, fmt.Errorf("store: comments: %w", err)
	}
	cs, err := pgx.CollectRows(rows, scanCommentRow)
	if err != nil {
		return Page[*Comment]{}, fmt.Errorf("store: comments: %w", err)
	}
	return PageOf(cs, p.First), nil
}

// CommentThread names a list of comments: an activity's (Parent nil) or
// a comment's replies.
type CommentThread struct {
	Activity uuid.UUID
	Parent   *uuid.UUID
}

// FirstComments returns the first page of each thread, in one statement
// for the lot: a page of activities shows their comments, or a page of
// comments their replies, without a statement per item. Threads are all
// activities' or all replies (as the first one is).
func (s *Store) FirstComments(ctx context.Context, threads []CommentThread, sort CommentSort, first int) ([]Page[*Comment], error) {
	if len(threads) == 0 {
		return nil, nil
	}
	acts := make([]uuid.UUID, len(threads))
	parents := make([]uuid.UUID, len(threads))
	replies := threads[0].Parent != nil
	for i, t := range threads {
		acts[i] = t.Activity
		if replies {
			parents[i] = *t.Parent
		}
	}
	cond := `activity_id = k.a AND parent_id IS NULL`
	if replies {
		cond = `activity_id = k.a AND parent_id = k.p`
	}
	order := `id DESC`
	switch sort {
	case CommentsOldest:
		order = `id`
	case CommentsTop:
		order = `reaction_count + reply_count DESC, id DESC`
	}
	rows, err := s.db.Query(ctx, `SELECT c.* FROM unnest($1::uuid[], $2::uuid[]) AS k(a, p) CROSS JOIN LATERAL (
		SELECT `+commentColumns+` FROM comments WHERE `+cond+` ORDER BY `+order+` LIMIT $3) c`, acts, parents, first+1)
	if err != nil {
		return nil, fmt.Errorf("store: first comments: %w", err)
	}
	cs, err := pgx.CollectRows(rows, scanCommentRow)
	if err != nil {
		return nil, fmt.Errorf("store: first comments: %w", err)
	}
	less := func(a, b *Comment) int { return -compareIDs(a.ID, b.ID) }
	switch sort {
	case CommentsOldest:
		less = func(a, b *Comment) int { return compareIDs(a.ID, b.ID) }
	case CommentsTop:
		less = func(a, b *Comment) int {
			if sa, sb := a.ReactionCount+a.ReplyCount, b.ReactionCount+b.ReplyCount; sa != sb {
				return sb - sa
			}
			return -compareIDs(a.ID, b.ID)
		}
	}
	slices.SortStableFunc(cs, less)
	type key struct{ activity, parent uuid.UUID }
	by := map[key][]*Comment{}
	for _, c := range cs {
		k := key{activity: c.ActivityID}
		if replies && c.ParentID != nil {
			k.parent = *c.ParentID
		}
		by[k] = append(by[k], c)
	}
	out := make([]Page[*Comment], len(threads))
	for i := range threads {
		out[i] = PageOf(by[key{acts[i], parents[i]}], first)
	}
	return out, nil
}

// compareIDs orders ids as PostgreSQL orders uuids.
func compareIDs(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) }

// removeComments deletes up to removeBatch comments of a removed activity,
// with their reactions, and returns how many went.
func (s *Store) removeComments(ctx context.Context, activity uuid.UUID) (int, error) {
	rows, err := s.db.Query(ctx, `DELETE FROM comments WHERE activity_id = $1 AND id IN (
		SELECT id FROM comments WHERE activity_id = $1 LIMIT $2) RETURNING id`, activity, removeBatch)
	if err != nil {
		return 0, fmt.Errorf("store: remove comments: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil || len(ids) == 0 {
		return 0, err
	}
	if _, err := s.db.Exec(ctx, `DELETE FROM comment_reactions WHERE comment_id = ANY($1)`, ids); err != nil {
		return 0, fmt.Errorf("store: remove comment reactions: %w", err)
	}
	if _, err := s.db.Exec(ctx, `DELETE FROM comment_reaction_counts WHERE comment_id = ANY($1)`, ids); err != nil {
		return 0, fmt.Errorf("store: remove comment reactions: %w", err)
	}
	return len(ids), nil
}
