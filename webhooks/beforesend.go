package webhooks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// The before-send hook: an optional, synchronous call to the app's own
// server before a message is written, which may let it through, reject it
// or rewrite its text and data (custom moderation). Unlike webhooks it
// runs inside the request, so it has a strict timeout, and what happens
// when the hook fails (times out, answers other than 2xx or with a body
// that is not a decision) is the operator's choice: fail open (send it
// unchanged) or closed (refuse it, UNAVAILABLE).

// BeforeSendEvent is the hook's request body type.
const BeforeSendEvent = "message.before_send"

// ErrBeforeSendUnavailable is the error of a send refused because the
// before-send hook failed and it fails closed.
var ErrBeforeSendUnavailable = errors.New("the before-send hook did not answer")

// BeforeSendOptions configure the hook (BROOK_BEFORE_SEND_*).
type BeforeSendOptions struct {
	// URL is where it is POSTed; empty: no hook.
	URL string
	// Secret signs each request as webhooks are signed.
	Secret string
	// Timeout bounds the call (500 ms).
	Timeout time.Duration
	// FailClosed refuses a message when the hook fails; otherwise it is
	// sent unchanged.
	FailClosed bool
}

// BeforeSendMessage is the message as the hook sees it.
type BeforeSendMessage struct {
	Text            string          `json:"text"`
	Data            json.RawMessage `json:"data,omitempty"`
	ParentID        *string         `json:"parent_id,omitempty"`
	QuotedMessageID *string         `json:"quoted_message_id,omitempty"`
	Mentioned       []string        `json:"mentioned_users,omitempty"`
}

// BeforeSendRequest is the body the hook receives.
type BeforeSendRequest struct {
	Type    string            `json:"type"`
	Channel string            `json:"channel"`
	User    string            `json:"user"`
	Message BeforeSendMessage `json:"message"`
}

// BeforeSendDecision is the hook's answer: action "allow", "reject"
// (with a reason the sender sees) or "rewrite" (text, and data when set).
type BeforeSendDecision struct {
	Action string          `json:"action"`
	Reason string          `json:"reason,omitempty"`
	Text   *string         `json:"text,omitempty"`
	Data   json.RawMessage `json:"data,omitempty"`
}

// HasBeforeSend reports whether a before-send hook is configured.
func (s *Service) HasBeforeSend() bool { return s != nil && s.opts.BeforeSend.URL != "" }

// BeforeSend asks the hook about a message. It returns the decision (an
// "allow" when the hook failed and fails open) or, failing closed,
// ErrBeforeSendUnavailable.
func (s *Service) BeforeSend(ctx context.Context, req BeforeSendRequest) (*BeforeSendDecision, error) {
	req.Type = BeforeSendEvent
	d, err := s.askBeforeSend(ctx, req)
	if err == nil {
		return d, nil
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	s.log.Warn("webhooks: before-send hook failed", "channel", req.Channel, "fail_closed", s.opts.BeforeSend.FailClosed, "err", err)
	if s.opts.BeforeSend.FailClosed {
		return nil, fmt.Errorf("%w: %v", ErrBeforeSendUnavailable, err)
	}
	return &BeforeSendDecision{Action: "allow"}, nil
}

func (s *Service) askBeforeSend(ctx context.Context, req BeforeSendRequest) (*BeforeSendDecision, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.BeforeSend.Timeout)
	defer cancel()
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, s.opts.BeforeSend.URL, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set(EventHeader, BeforeSendEvent)
	if s.opts.BeforeSend.Secret != "" {
		hr.Header.Set(SignatureHeader, Sign(s.opts.BeforeSend.Secret, time.Now(), body))
	}
	resp, err := s.opts.Client.Do(hr)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("answered %s", resp.Status)
	}
	var d BeforeSendDecision
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&d); err != nil {
		return nil, fmt.Errorf("answer is not a decision: %w", err)
	}
	switch d.Action {
	case "allow", "reject":
	case "rewrite":
		if d.Text == nil && d.Data == nil {
			return nil, errors.New("a rewrite without text or data")
		}
	default:
		return nil, fmt.Errorf("unknown action %q", d.Action)
	}
	return &d, nil
}
