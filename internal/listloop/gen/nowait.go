package main

// noWait names resolver fields (Type.field) that never wait: they compute
// from the parent's value alone, with no loader, no I/O and no lock held by
// a sibling. A list whose selection needs only these and plain fields is
// marshalled in a plain loop. Add a field only when that holds on every
// path; a field that may read through a loader must never be here, or its
// loader would be fed one key at a time. The generator fails when an entry
// names no resolver field.
var noWait = map[string]bool{
	"Message.pinnedAt":     true, // the stored pin, unless expired
	"Message.pinExpiresAt": true,
	"Channel.joinPolicy":   true, // the product's default for an empty policy
	"CallType.permissions": true, // the stored map, reshaped
}
