package resolvers

import (
	"github.com/brookhq/brook/calls"
	"github.com/brookhq/brook/graph/model"
	"github.com/brookhq/brook/store"
)

// callTypeSettings turns the schema's settings into the store's.
func callTypeSettings(in model.CallTypeSettingsInput) store.CallTypeSettings {
	out := store.CallTypeSettings{MaxParticipants: in.MaxParticipants, MaxDurationSeconds: in.MaxDurationSeconds,
		RejectBusy: in.RejectBusy, Backstage: in.Backstage}
	if v, set := in.RingTimeoutSeconds.ValueOK(); set {
		out.RingTimeoutSeconds = v
		out.ClearRingTimeout = v == nil
	}
	if p := in.Permissions; p != nil {
		out.Permissions = store.CallPermissions{}
		for role, perms := range map[string][]calls.CallPermission{"host": p.Host, "member": p.Member, "viewer": p.Viewer} {
			if perms == nil {
				continue
			}
			list := make([]string, len(perms))
			for i, v := range perms {
				list[i] = string(v)
			}
			out.Permissions[role] = list
		}
	}
	return out
}

// callTypePermissions turns a call type's stored permissions into the
// schema's (a role without any has an empty list).
func callTypePermissions(p store.CallPermissions) *model.CallTypePermissions {
	conv := func(role string) []calls.CallPermission {
		out := make([]calls.CallPermission, len(p[role]))
		for i, v := range p[role] {
			out[i] = calls.CallPermission(v)
		}
		return out
	}
	return &model.CallTypePermissions{Host: conv("host"), Member: conv("member"), Viewer: conv("viewer")}
}

// callListArgs gathers a call list's arguments.
func callListArgs(filter *store.CallFilter, sort *store.CallSort, first *int, after *string) calls.CallListArgs {
	a := calls.CallListArgs{Sort: sort, First: first, After: after}
	if filter != nil {
		a.Filter = *filter
	}
	return a
}

// callEdges makes a call list's connection.
func callEdges(page store.Page[*store.ListedCall]) *model.CallConnection {
	e, info := edges(page, func(c *store.ListedCall) string { return c.Cursor },
		func(cursor string, c *store.ListedCall) *model.CallEdge {
			return &model.CallEdge{Cursor: cursor, Node: c.Call}
		})
	return &model.CallConnection{Edges: e, PageInfo: info}
}
