package store

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Channel lists (the channels query): a user's channels and invitations,
// or the channels it could join, filtered, in a chosen order, paged by
// keyset cursors that hold the sort keys.
//
// The list is a UNION ALL of up to three sources, each read, filtered,
// ordered and limited on its own, so that each can use its index:
//
//   - the user's memberships (channel_members_by_user),
//   - its pending invitations (channel_invites_by_user),
//   - the channels open to anyone that it is not in (joined: false): the
//     partial indexes of migration 017, by created_at, member_count and
//     name; data containment by the GIN index on data.
//
// In every source, c is the channel and m the user's channel_members row,
// all NULL where the user is no member.

// ChannelFilter narrows a channel list; nil fields keep every channel.
type ChannelFilter struct {
	Type *string
	// Joined: only channels the user is a member of (true), or only
	// those it is not in and could join: open ones and invitations
	// (false). Nil: its memberships and invitations.
	Joined *bool
	// Invited: only invitations (true), or none (false).
	Invited   *bool
	HasUnread *bool
	Frozen    *bool
	// Muted: channels the user mutes now (true), or not (false).
	Muted *bool
	// Hidden: channels the user hid, with no message since (true), or
	// not (false). Nil: not those, as a hidden channel is off the list.
	Hidden *bool
	// Members keeps channels whose members include all its users.
	Members *ChannelMembersFilter
	// Data keeps channels whose data contains it (jsonb @>).
	Data json.RawMessage
	// NameStartsWith keeps channels whose name starts with it, ignoring
	// case as the database's lower() does.
	NameStartsWith *string
}

// ChannelMembersFilter keeps channels whose members include every user of
// Includes.
type ChannelMembersFilter struct {
	Includes []string
}

// memberFlags are the boolean filters over the user's own membership row
// (m), each an SQL expression; a non-member's row is all NULL, which
// reads as false. A new per-member filter (muted, hidden) is a field of
// ChannelFilter (and of the schema's input) and a line here.
var memberFlags = []struct {
	get  func(*ChannelFilter) *bool
	expr string
}{
	{func(f *ChannelFilter) *bool { return f.HasUnread }, unreadOf + ` > 0`},
	{func(f *ChannelFilter) *bool { return f.Muted }, channelMuted},
	{func(f *ChannelFilter) *bool { return f.Hidden }, channelHidden},
}

// ChannelSortField is what a channel list is ordered by.
type ChannelSortField string

// Channel sort fields.
const (
	SortLastMessageAt ChannelSortField = "LAST_MESSAGE_AT"
	SortCreatedAt     ChannelSortField = "CREATED_AT"
	SortUnreadCount   ChannelSortField = "UNREAD_COUNT"
	SortMemberCount   ChannelSortField = "MEMBER_COUNT"
	SortName          ChannelSortField = "NAME"
)

// MarshalGQL writes the field as its GraphQL enum value.
func (f ChannelSortField) MarshalGQL(w io.Writer) {
	_, _ = io.WriteString(w, strconv.Quote(string(f)))
}

// UnmarshalGQL reads a GraphQL enum value.
func (f *ChannelSortField) UnmarshalGQL(v any) error {
	return UnmarshalEnum(f, v, "sort.field", "channel sort field", SortLastMessageAt, SortCreatedAt, SortUnreadCount, SortMemberCount, SortName)
}

// SortDirection is ascending or descending.
type SortDirection string

// Sort directions.
const (
	SortAsc  SortDirection = "ASC"
	SortDesc SortDirection = "DESC"
)

// MarshalGQL writes the direction as its GraphQL enum value.
func (d SortDirection) MarshalGQL(w io.Writer) { _, _ = io.WriteString(w, strconv.Quote(string(d))) }

// UnmarshalGQL reads a GraphQL enum value.
func (d *SortDirection) UnmarshalGQL(v any) error {
	return UnmarshalEnum(d, v, "sort.direction", "direction", SortAsc, SortDesc)
}

// ChannelSort is one entry of a channel list's order.
type ChannelSort struct {
	Field ChannelSortField
	// Direction is ASC when empty.
	Direction SortDirection
}

// defaultChannelSort is the list's order when none is given: latest
// activity first.
var defaultChannelSort = []ChannelSort{{Field: SortLastMessageAt, Direction: SortDesc}}

// keyKind is the type of a sort key, in SQL and in a cursor.
type keyKind int

const (
	keyTime keyKind = iota // timestamptz; a cursor holds Unix microseconds
	keyInt                 // an integer
	keyText                // text in the C collation
)

// channelKey is a sort key: an SQL expression over c and m that is never
// NULL, and the SQL type its cursor value is compared as.
type channelKey struct {
	expr string
	kind keyKind
	cast string
}

// channelNameKey is what NAME orders and nameStartsWith matches: the
// name, lowercased, in the C collation (so that a prefix is a plain byte
// range on the index, whatever the database's collation), empty for none.
const channelNameKey = `(lower(coalesce(c.name, '')) COLLATE "C")`

var channelSortKeys = map[ChannelSortField]channelKey{
	SortLastMessageAt: {`coalesce(c.last_message_at, c.created_at)`, keyTime, "timestamptz"},
	SortCreatedAt:     {`c.created_at`, keyTime, "timestamptz"},
	// The exact count, from PostgreSQL's sequence numbers: as
	// Member.unreadCount computes it.
	SortUnreadCount: {`coalesce(` + unreadOf + `, 0)`, keyInt, "int8"},
	SortMemberCount: {`c.member_count`, keyInt, "int4"},
	SortName:        {channelNameKey, keyText, "text"},
}

// openToJoin is the SQL for "anyone signed in may join channel c": its
// join policy, or its type's default (the chat product's rule:
// livestream channels are open, messaging channels by invitation). The
// partial indexes of migration 017 have this predicate, written alike;
// plain column conditions, which the planner estimates from the columns'
// statistics.
const openToJoin = `(c.join_policy = 'OPEN' OR (c.join_policy IS NULL AND c.type = 'livestream'))`

// ListedChannel is a channel in a list, with its position there.
type ListedChannel struct {
	Channel *Channel
	// Cursor is the channel's position in its list, to continue after it.
	Cursor string
	// Outsider: the user is neither a member of the channel nor invited
	// to it (it is listed as one it could join).
	Outsider bool
}

// sqlArgs collects a statement's arguments.
type sqlArgs []any

// add appends an argument and returns its placeholder.
func (a *sqlArgs) add(v any) string {
	*a = append(*a, v)
	return "$" + strconv.Itoa(len(*a))
}

// orderKey is one key of a list's order, in its direction.
type orderKey struct {
	channelKey
	desc bool
}

// channelOrder checks a sort and returns its keys, the channel id last as
// the tiebreak (in the last entry's direction), and its canonical text,
// which cursors carry.
func channelOrder(sort []ChannelSort) ([]orderKey, string, error) {
	if len(sort) == 0 {
		sort = defaultChannelSort
	}
	keys := make([]orderKey, 0, len(sort)+1)
	spec := make([]string, 0, len(sort))
	seen := map[ChannelSortField]bool{}
	for i, s := range sort {
		k, ok := channelSortKeys[s.Field]
		if !ok {
			return nil, "", Invalid(fmt.Sprintf("sort[%d].field", i), "%q is not a channel sort field", truncate(string(s.Field), 40))
		}
		if seen[s.Field] {
			return nil, "", Invalid(fmt.Sprintf("sort[%d].field", i), "%s appears more than once", s.Field)
		}
		seen[s.Field] = true
		dir := s.Direction
		switch dir {
		case "":
			dir = SortAsc
		case SortAsc, SortDesc:
		default:
			return nil, "", Invalid(fmt.Sprintf("sort[%d].direction", i), "%q is not a direction: use ASC or DESC", truncate(string(dir), 40))
		}
		keys = append(keys, orderKey{k, dir == SortDesc})
		spec = append(spec, string(s.Field)+"."+string(dir))
	}
	keys = append(keys, orderKey{channelKey{`c.id`, keyText, "text"}, keys[len(keys)-1].desc})
	return keys, strings.Join(spec, ","), nil
}

// channelPos is a decoded cursor: the sort it was made for, the values of
// its keys (the id's last) as the cursor holds them.
type channelPos struct {
	Sort string `json:"s"`
	Keys []any  `json:"k"`
}

// encodeChannelPos makes a cursor position from a row's key values.
func encodeChannelPos(spec string, keys []orderKey, vals []any) string {
	pos := channelPos{Sort: spec, Keys: make([]any, len(vals))}
	for i, v := range vals {
		switch v := v.(type) {
		case *time.Time:
			pos.Keys[i] = v.UnixMicro()
		case *int64:
			pos.Keys[i] = *v
		case *string:
			pos.Keys[i] = *v
		}
	}
	b, _ := json.Marshal(pos)
	return string(b)
}

// parseChannelPos decodes a cursor position into the SQL values of its
// keys. A cursor of another sort is an InputError.
func parseChannelPos(after, spec string, keys []orderKey) ([]any, error) {
	bad := Invalid("after", "is not a valid cursor; pass an endCursor from a previous page")
	dec := json.NewDecoder(strings.NewReader(after))
	dec.UseNumber()
	dec.DisallowUnknownFields()
	var pos channelPos
	if err := dec.Decode(&pos); err != nil || dec.More() {
		return nil, bad
	}
	if pos.Sort != spec {
		return nil, Invalid("after", "the cursor was made for another sort: page with the sort of the list it came from")
	}
	if len(pos.Keys) != len(keys) {
		return nil, bad
	}
	out := make([]any, len(keys))
	for i, k := range keys {
		switch v := pos.Keys[i].(type) {
		case json.Number:
			n, err := v.Int64()
			if err != nil || k.kind == keyText {
				return nil, bad
			}
			out[i] = n
			if k.kind == keyTime {
				out[i] = time.UnixMicro(n).UTC()
			}
		case string:
			if k.kind != keyText || CheckText("after", v, 1000) != nil {
				return nil, bad
			}
			out[i] = v
		default:
			return nil, bad
		}
	}
	return out, nil
}

// after is the SQL condition for rows after a cursor's position, whose
// values are the placeholders ph. A single direction is one row
// comparison (which a multicolumn index serves); mixed ones expand.
func afterPos(keys []orderKey, ph []string) string {
	op := func(k orderKey) string {
		if k.desc {
			return "<"
		}
		return ">"
	}
	same := true
	for _, k := range keys[1:] {
		same = same && k.desc == keys[0].desc
	}
	exprs := make([]string, len(keys))
	vals := make([]string, len(keys))
	for i, k := range keys {
		exprs[i], vals[i] = k.expr, ph[i]+"::"+k.cast
	}
	if same {
		return "(" + strings.Join(exprs, ", ") + ") " + op(keys[0]) + " (" + strings.Join(vals, ", ") + ")"
	}
	var ors []string
	for i, k := range keys {
		var and []string
		for j := 0; j < i; j++ {
			and = append(and, exprs[j]+" = "+vals[j])
		}
		and = append(and, exprs[i]+" "+op(k)+" "+vals[i])
		ors = append(ors, "("+strings.Join(and, " AND ")+")")
	}
	return "(" + strings.Join(ors, " OR ") + ")"
}

// orderBy is an ORDER BY list of keys, as expressions or (alias) as the
// columns k0, k1... of the union.
func orderBy(keys []orderKey, alias bool) string {
	out := make([]string, len(keys))
	for i, k := range keys {
		e := k.expr
		if alias {
			e = "u.k" + strconv.Itoa(i)
			if i == len(keys)-1 {
				e = "u.id"
			}
			if k.kind == keyText && i < len(keys)-1 {
				e += ` COLLATE "C"`
			}
		}
		if k.desc {
			e += " DESC"
		}
		out[i] = e
	}
	return strings.Join(out, ", ")
}

// conditions checks a filter and returns its conditions over c and m.
func (f *ChannelFilter) conditions(a *sqlArgs) ([]string, error) {
	out := []string{`c.deleted_at IS NULL`}
	if f.Hidden == nil {
		out = append(out, `NOT coalesce(`+channelHidden+`, false)`)
	}
	if f.Type != nil {
		if err := checkChannelType("filter.type", *f.Type); err != nil {
			return nil, err
		}
		out = append(out, `c.type = `+a.add(*f.Type))
	}
	if f.Frozen != nil {
		out = append(out, `c.frozen = `+a.add(*f.Frozen))
	}
	if f.Data != nil {
		if err := CheckData("filter.data", f.Data); err != nil {
			return nil, err
		}
		out = append(out, `c.data @> `+a.add(string(f.Data))+`::jsonb`)
	}
	if p := f.NameStartsWith; p != nil {
		if err := CheckText("filter.nameStartsWith", *p, maxUserName); err != nil {
			return nil, err
		}
		// U+10FFFF is the largest character: every string with the prefix
		// sorts below prefix+U+10FFFF in the C collation.
		lo := a.add(*p)
		out = append(out, `c.name IS NOT NULL AND `+channelNameKey+` >= lower(`+lo+`::text) COLLATE "C" AND `+
			channelNameKey+` < (lower(`+lo+`::text) || `+a.add("\U0010FFFF")+`::text) COLLATE "C"`)
	}
	if m := f.Members; m != nil && len(m.Includes) > 0 {
		if err := checkUserList("filter.members.includes", m.Includes); err != nil {
			return nil, err
		}
		out = append(out, `c.id IN (SELECT channel_id FROM channel_members WHERE user_id = ANY(`+a.add(m.Includes)+
			`::text[]) GROUP BY channel_id HAVING count(*) = `+a.add(len(m.Includes))+`)`)
	}
	for _, fl := range memberFlags {
		if v := fl.get(f); v != nil {
			out = append(out, `coalesce(`+fl.expr+`, false) = `+a.add(*v))
		}
	}
	return out, nil
}

// sources says which sources the filter reads: memberships, invitations,
// and channels open to the user that it is not in.
func (f *ChannelFilter) sources() (members, invites, open bool) {
	is := func(b *bool, v bool) bool { return b != nil && *b == v }
	members = !is(f.Joined, false) && !is(f.Invited, true)
	invites = !is(f.Joined, true) && !is(f.Invited, false)
	open = is(f.Joined, false) && !is(f.Invited, true)
	for _, fl := range memberFlags {
		if is(fl.get(f), true) {
			invites, open = false, false // a non-member's flags are false
		}
	}
	return members, invites, open
}

// channelListQuery is the statement of a channel list and its arguments;
// an empty statement for a list that is empty by its filter.
type channelListQuery struct {
	sql  string
	args sqlArgs
	keys []orderKey
	spec string
}

func buildChannelList(userID string, f ChannelFilter, sort []ChannelSort, first int, after string) (*channelListQuery, error) {
	keys, spec, err := channelOrder(sort)
	if err != nil {
		return nil, err
	}
	q := &channelListQuery{keys: keys, spec: spec}
	a := &q.args
	me := a.add(userID)
	conds, err := f.conditions(a)
	if err != nil {
		return nil, err
	}
	if after != "" {
		vals, err := parseChannelPos(after, spec, keys)
		if err != nil {
			return nil, err
		}
		ph := make([]string, len(vals))
		for i, v := range vals {
			ph[i] = a.add(v)
		}
		conds = append(conds, afterPos(keys, ph))
	}
	limit := a.add(first + 1)
	members, invites, open := f.sources()
	var branches []string
	branch := func(from string, outsider bool) {
		cols := make([]string, len(keys)-1)
		for i, k := range keys[:len(keys)-1] {
			cols[i] = k.expr + " AS k" + strconv.Itoa(i)
		}
		b := `SELECT ` + prefixed("c.", channelColumns) + `, ` + strings.Join(cols, ", ") + `, ` + strconv.FormatBool(outsider) + ` AS outsider
			` + from
		for _, c := range conds {
			b += "\n\t\t\tAND " + c
		}
		branches = append(branches, b+"\n\t\t\tORDER BY "+orderBy(keys, false)+" LIMIT "+limit)
	}
	if members {
		branch(`FROM channel_members m JOIN channels c ON c.id = m.channel_id WHERE m.user_id = `+me, false)
	}
	if invites {
		// Invitations have no read position: they count no unread.
		branch(`FROM channel_invites i JOIN channels c ON c.id = i.channel_id
			LEFT JOIN channel_members m ON m.channel_id = c.id AND m.user_id = `+me+`
			WHERE i.user_id = `+me+` AND m.user_id IS NULL`, false)
	}
	if open {
		// Not those the user is banned from (a hard ban): it cannot join them.
		branch(`FROM channels c LEFT JOIN channel_members m ON m.channel_id = c.id AND m.user_id = `+me+`
			WHERE `+openToJoin+` AND m.user_id IS NULL
			AND NOT EXISTS (SELECT 1 FROM channel_invites i WHERE i.channel_id = c.id AND i.user_id = `+me+`)
			AND coalesce(`+banOf("c.id", me)+`, true)`, true)
	}
	switch len(branches) {
	case 0:
	case 1:
		q.sql = branches[0]
	default:
		q.sql = `SELECT * FROM ((` + strings.Join(branches, ")\n\t\tUNION ALL (") + `)) u ORDER BY ` + orderBy(keys, true) + ` LIMIT ` + limit
	}
	return q, nil
}

// UserChannels lists channels for a user (see ChannelFilter.Joined), in
// the given order (latest activity first when none), first+1 rows after
// the cursor position ("" for the start).
func (s *Store) UserChannels(ctx context.Context, userID string, f ChannelFilter, sort []ChannelSort, first int, after string) (Page[*ListedChannel], error) {
	q, err := buildChannelList(userID, f, sort, first, after)
	if err != nil {
		return Page[*ListedChannel]{}, err
	}
	if q.sql == "" {
		return Page[*ListedChannel]{Items: []*ListedChannel{}}, nil
	}
	keys := q.keys
	rows, err := s.reader(ctx).Query(ctx, q.sql, q.args...)
	if err != nil {
		return Page[*ListedChannel]{}, fmt.Errorf("store: user channels: %w", err)
	}
	found, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*ListedChannel, error) {
		vals := make([]any, len(keys))
		for i, k := range keys[:len(keys)-1] {
			switch k.kind {
			case keyTime:
				vals[i] = new(time.Time)
			case keyInt:
				vals[i] = new(int64)
			default:
				vals[i] = new(string)
			}
		}
		var l ListedChannel
		c, err := scanChannel(r, append(vals[:len(keys)-1:len(keys)-1], &l.Outsider)...)
		if err != nil {
			return nil, err
		}
		vals[len(keys)-1] = &c.ID
		l.Channel, l.Cursor = c, encodeChannelPos(q.spec, keys, vals)
		return &l, nil
	})
	if err != nil {
		return Page[*ListedChannel]{}, fmt.Errorf("store: user channels: %w", err)
	}
	return PageOf(found, first), nil
}
