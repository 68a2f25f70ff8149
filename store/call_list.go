package store

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Call lists (the calls query and User.calls): the calls a user is a
// member of (every call, for an admin), filtered, ordered by creation or
// start time, paged by keyset cursors that hold the sort key and the id.

// CallFilter narrows a call list; nil fields keep every call.
type CallFilter struct {
	// Live: only calls with (true) or without (false) a live session.
	Live *bool
	// CreatedBy: only calls this user created.
	CreatedBy *string
	// Member: only calls this user is a member of.
	Member *string
	// Type: only calls of this type.
	Type *string
	// StartsAfter: only scheduled calls that start after this time.
	StartsAfter *time.Time
}

// CallSortField is what a call list is ordered by.
type CallSortField string

// Call sort fields.
const (
	CallSortCreatedAt CallSortField = "CREATED_AT"
	// CallSortStartsAt orders by startsAt; a call without one counts from
	// its creation.
	CallSortStartsAt CallSortField = "STARTS_AT"
)

// MarshalGQL writes the field as its GraphQL enum value.
func (f CallSortField) MarshalGQL(w io.Writer) { _, _ = io.WriteString(w, strconv.Quote(string(f))) }

// UnmarshalGQL reads a GraphQL enum value.
func (f *CallSortField) UnmarshalGQL(v any) error {
	return UnmarshalEnum(f, v, "sort.field", "call sort field", CallSortCreatedAt, CallSortStartsAt)
}

// CallSort is a call list's order.
type CallSort struct {
	Field CallSortField
	// Direction is DESC when empty.
	Direction SortDirection
}

// callSortKeys are the SQL expressions of the sort fields (never NULL).
var callSortKeys = map[CallSortField]string{
	CallSortCreatedAt: `c.created_at`,
	CallSortStartsAt:  `coalesce(c.starts_at, c.created_at)`,
}

// ListedCall is a call in a list, with its position there.
type ListedCall struct {
	Call *Call
	// Cursor is the call's position in its list, to continue after it.
	Cursor string
}

// CallListParams say whose list, narrowed how, in which order, which page.
type CallListParams struct {
	// UserID is whose calls: the calls it is a member of.
	UserID string
	// All lists every call (an admin's list), not only UserID's.
	All    bool
	Filter CallFilter
	Sort   CallSort
	First  int
	// After is the cursor (ListedCall.Cursor) to continue after; "" for the start.
	After string
}

// ListCalls lists calls: first+1 rows read for a page of first.
func (s *Store) ListCalls(ctx context.Context, p CallListParams) (Page[*ListedCall], error) {
	if p.Sort.Field == "" {
		p.Sort.Field = CallSortCreatedAt
	}
	if p.Sort.Direction == "" {
		p.Sort.Direction = SortDesc
	}
	key, ok := callSortKeys[p.Sort.Field]
	if !ok {
		return Page[*ListedCall]{}, Invalid("sort.field", "%q is not a call sort field: use CREATED_AT or STARTS_AT", p.Sort.Field)
	}
	f := p.Filter
	for field, u := range map[string]*string{"filter.createdBy": f.CreatedBy, "filter.member": f.Member} {
		if u != nil {
			if err := CheckUserID(field, *u); err != nil {
				return Page[*ListedCall]{}, err
			}
		}
	}
	if f.Type != nil {
		if err := CheckCallType("filter.type", *f.Type); err != nil {
			return Page[*ListedCall]{}, err
		}
	}
	var args sqlArgs
	where := []string{"true"}
	if !p.All {
		where = append(where, `c.id IN (SELECT call_id FROM call_members WHERE user_id = `+args.add(p.UserID)+`)`)
	}
	if f.Member != nil {
		where = append(where, `c.id IN (SELECT call_id FROM call_members WHERE user_id = `+args.add(*f.Member)+`)`)
	}
	if f.CreatedBy != nil {
		where = append(where, `c.created_by = `+args.add(*f.CreatedBy))
	}
	if f.Type != nil {
		where = append(where, `c.type = `+args.add(*f.Type))
	}
	if f.StartsAfter != nil {
		where = append(where, `c.starts_at > `+args.add(*f.StartsAfter))
	}
	if f.Live != nil {
		where = append(where, `EXISTS (SELECT 1 FROM call_sessions cs WHERE cs.call_id = c.id AND cs.ended_at IS NULL) = `+args.add(*f.Live))
	}
	desc := p.Sort.Direction == SortDesc
	op, dir := ">", "ASC"
	if desc {
		op, dir = "<", "DESC"
	}
	if p.After != "" {
		at, id, err := parseCallCursor(p.After)
		if err != nil {
			return Page[*ListedCall]{}, err
		}
		where = append(where, `(`+key+`, c.id) `+op+` (`+args.add(at)+`::timestamptz, `+args.add(id)+`::text)`)
	}
	q := `SELECT ` + prefixed("c.", callColumns) + `, ` + key + ` FROM calls c WHERE ` + strings.Join(where, " AND ") +
		` ORDER BY ` + key + ` ` + dir + `, c.id ` + dir + ` LIMIT ` + args.add(p.First+1)
	rows, err := s.reader(ctx).Query(ctx, q, args...)
	if err != nil {
		return Page[*ListedCall]{}, fmt.Errorf("store: list calls: %w", err)
	}
	found, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*ListedCall, error) {
		var c Call
		var at time.Time
		if err := r.Scan(&c.ID, &c.Type, &c.CreatedByID, &c.Data, &c.CreatedAt, &c.UpdatedAt, &c.StartsAt, &c.Backstage, &at); err != nil {
			return nil, err
		}
		return &ListedCall{Call: &c, Cursor: strconv.FormatInt(at.UnixMicro(), 10) + "|" + c.ID}, nil
	})
	if err != nil {
		return Page[*ListedCall]{}, fmt.Errorf("store: list calls: %w", err)
	}
	return PageOf(found, p.First), nil
}

// parseCallCursor reads a call list position: Unix microseconds, "|", id.
func parseCallCursor(pos string) (time.Time, string, error) {
	micros, id, ok := strings.Cut(pos, "|")
	n, err := strconv.ParseInt(micros, 10, 64)
	if !ok || err != nil || id == "" {
		return time.Time{}, "", Invalid("after", "is not a valid cursor; pass an endCursor from a previous page")
	}
	return time.UnixMicro(n).UTC(), id, nil
}
