package api

import (
	"encoding/json"
	"sync"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
)

// A chat message reaches every subscriber of its channel as the same
// decoded event, and most subscribers select the same fields of it. Where
// the selection's answer cannot depend on who asks, its response is
// executed once per event and selection, and the other subscribers get
// the same bytes: executing the selection per subscriber was a third of
// the CPU of delivering a message to a thousand of them.

// sharedFields are the fields whose value depends only on their object and
// arguments, never on the caller: what a subscriber may read of an event it
// has been given. A selection with any other field (ownReactions, a
// channel's unreadCount) is executed for each subscriber.
var sharedFields = map[string]bool{
	"Subscription.messageAdded": true, "Subscription.channelEvents": true,
	"Message.id": true, "Message.text": true, "Message.type": true, "Message.user": true,
	"Message.replyCount": true, "Message.mentionedUsers": true, "Message.reactionCounts": true,
	"Message.data": true, "Message.createdAt": true, "Message.updatedAt": true, "Message.deletedAt": true,
	"ReactionCount.kind": true, "ReactionCount.count": true,
	"User.id": true, "User.name": true, "User.image": true, "User.data": true, "User.role": true,
	"User.createdAt": true, "User.updatedAt": true,
	"ChannelEvent.type": true, "ChannelEvent.channel": true, "ChannelEvent.user": true,
	"ChannelEvent.message": true, "ChannelEvent.createdAt": true,
}

// shareKey returns the key under which an operation's responses may be
// shared with other operations given the same event and document (see
// sharedKey): the same operation and variables, and only sharedFields. ""
// when it may not.
func shareKey(rc *graphql.OperationContext) string {
	if rc.Operation == nil || rc.Operation.Operation != ast.Subscription || !sharedSelection(rc.Operation.SelectionSet) {
		return ""
	}
	vars, err := json.Marshal(rc.Variables)
	if err != nil {
		return ""
	}
	return rc.OperationName + "\x00" + string(vars)
}

func sharedSelection(set ast.SelectionSet) bool {
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			if !plainDirectives(s.Directives) {
				return false
			}
			if s.Name == "__typename" {
				continue
			}
			if s.ObjectDefinition == nil || !sharedFields[s.ObjectDefinition.Name+"."+s.Name] || !sharedSelection(s.SelectionSet) {
				return false
			}
		case *ast.InlineFragment:
			if !plainDirectives(s.Directives) || !sharedSelection(s.SelectionSet) {
				return false
			}
		case *ast.FragmentSpread:
			if !plainDirectives(s.Directives) || s.Definition == nil || !sharedSelection(s.Definition.SelectionSet) {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// plainDirectives: none but @skip and @include (whose variables are in the
// key); @defer changes the shape of the responses.
func plainDirectives(ds ast.DirectiveList) bool {
	for _, d := range ds {
		if d.Name != "skip" && d.Name != "include" {
			return false
		}
	}
	return true
}

// sharedResponse is one event's response to one shared selection: made by
// the first operation to deliver the event, waited for by the others.
type sharedResponse struct {
	done chan struct{}
	// fillerDone is the filling operation's end: its waiters stop
	// waiting then, resolved or not.
	fillerDone <-chan struct{}
	// payload is the response; nil when it could not be shared (it had
	// errors, or its operation ended first).
	payload []byte
}

func (e *sharedResponse) resolve(payload []byte) {
	e.payload = payload
	close(e.done)
}

// sharedKey is an event and a selection of it: the document (held, so
// that its address is not another document's while the key is listed) and
// the operation's shareKey.
type sharedKey struct {
	event any
	doc   *ast.QueryDocument
	key   string
}

// sharedResponses keeps the responses of the latest events. The events are
// pointers the streams share, and holding the key keeps the event's memory
// from being reused while it is listed.
type sharedResponses struct {
	mu   sync.Mutex
	keys [64]sharedKey
	vals [64]*sharedResponse
	next int
}

// get returns the entry for k, and whether the caller made it (and must
// resolve it; fillerDone is when the caller's operation ends).
func (c *sharedResponses) get(k sharedKey, fillerDone <-chan struct{}) (*sharedResponse, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range c.keys {
		if c.keys[i] == k {
			return c.vals[i], false
		}
	}
	e := &sharedResponse{done: make(chan struct{}), fillerDone: fillerDone}
	c.keys[c.next], c.vals[c.next] = k, e
	c.next = (c.next + 1) % len(c.keys)
	return e, true
}

// sharedPayload encodes resp as the payload of a next message, when it can
// be shared: data only.
func sharedPayload(resp *graphql.Response) []byte {
	if resp == nil || len(resp.Errors) > 0 || len(resp.Extensions) > 0 || resp.Label != "" || resp.Path != nil || resp.HasNext != nil || len(resp.Data) == 0 {
		return nil
	}
	b := make([]byte, 0, len(resp.Data)+10)
	b = append(b, `{"data":`...)
	b = append(b, resp.Data...)
	return append(b, '}')
}
