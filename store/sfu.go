package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/brookhq/brook/internal/sfu"
)

// SFUNode is an SFU media server as the API shows it: a configured node,
// or the node a session was assigned (copied into the session's row).
type SFUNode struct {
	ID     string
	URL    string
	Region *string
}

func sfuNode(n sfu.Node) SFUNode {
	out := SFUNode{ID: n.ID, URL: n.URL}
	if n.Region != "" {
		region := n.Region
		out.Region = &region
	}
	return out
}

// SFUNodes maps configured nodes to their API form.
func SFUNodes(nodes []sfu.Node) []*SFUNode {
	out := make([]*SFUNode, len(nodes))
	for i, n := range nodes {
		node := sfuNode(n)
		out[i] = &node
	}
	return out
}

// SetSFUDrained drains an SFU node (no new session is assigned to it) or
// puts it back in service. The state is shared by every Brook node. It
// reports whether the state changed.
func (s *Store) SetSFUDrained(ctx context.Context, id string, drained bool, by string) (bool, error) {
	var sql string
	var args []any
	if drained {
		sql, args = `INSERT INTO sfu_drains (sfu_id, drained_by) VALUES ($1, $2) ON CONFLICT (sfu_id) DO NOTHING`, []any{id, by}
	} else {
		sql, args = `DELETE FROM sfu_drains WHERE sfu_id = $1`, []any{id}
	}
	tag, err := s.db.Exec(ctx, sql, args...)
	if err != nil {
		return false, fmt.Errorf("store: drain sfu: %w", err)
	}
	return tag.RowsAffected() > 0, nil
}

// DrainedSFUs returns the ids of drained SFU nodes.
func (s *Store) DrainedSFUs(ctx context.Context) (map[string]bool, error) {
	rows, err := s.db.Query(ctx, `SELECT sfu_id FROM sfu_drains`)
	if err != nil {
		return nil, fmt.Errorf("store: drained sfus: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("store: drained sfus: %w", err)
	}
	out := make(map[string]bool, len(ids))
	for _, id := range ids {
		out[id] = true
	}
	return out, nil
}
