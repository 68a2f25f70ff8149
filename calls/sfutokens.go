package calls

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/brookhq/brook/internal/auth"
	"github.com/brookhq/brook/internal/sfu"
	"github.com/brookhq/brook/store"
)

// DefaultSFUTokenTTL is how long a participant's SFU token is valid
// (CALL_SFU_TOKEN_TTL). An SFU checks it when the participant connects,
// so a client refreshes it before it runs out, for reconnections.
const DefaultSFUTokenTTL = 10 * time.Minute

// Track sources a participant may publish, as LiveKit names them in
// canPublishSources.
const (
	SourceCamera      = "camera"
	SourceMicrophone  = "microphone"
	SourceScreenShare = "screen_share"
	// SourceScreenShareAudio is a shared screen's sound: LiveKit treats it
	// as a source of its own, so it goes with SourceScreenShare.
	SourceScreenShareAudio = "screen_share_audio"
)

// SFUGrants are what a participant may do on its session's SFU.
type SFUGrants struct {
	// Publish lists the track sources it may publish; none means it may
	// publish nothing.
	Publish []string
	// Subscribe lets it receive the others' tracks.
	Subscribe bool
	// PublishData lets it send data messages through the SFU.
	PublishData bool
}

// SFUToken is a participant's credential for its session's SFU: a JWT
// with LiveKit's claims, signed with that node's own secret.
type SFUToken struct {
	// Token is the signed JWT.
	Token string
	// ExpiresAt is its exp claim: the SFU admits no new connection with
	// it after that.
	ExpiresAt time.Time
}

// participantGrants is the one place a participant's SFU grants come
// from: its permissions in the call (a host's grants and revokes, else its
// call type's defaults for its role) say which sources it may publish;
// everyone may watch; members, hosts and admins may send data.
func (s *Service) participantGrants(ctx context.Context, p *store.CallParticipant, role string, admin bool) (SFUGrants, error) {
	access, err := s.store.CallParticipantAccess(ctx, []uuid.UUID{p.ID})
	if err != nil {
		return SFUGrants{}, err
	}
	if access[0] == nil {
		return SFUGrants{Subscribe: true}, nil
	}
	member := role == store.CallRoleHost || role == store.CallRoleMember || (role == "" && admin)
	return grantsFor(s.effective(access[0]), member), nil
}

// grantsFor turns capabilities into SFU grants, sources in LiveKit's
// order.
func grantsFor(caps []CallPermission, data bool) SFUGrants {
	g := SFUGrants{Subscribe: true, PublishData: data}
	if slices.Contains(caps, SendVideo) {
		g.Publish = append(g.Publish, SourceCamera)
	}
	if slices.Contains(caps, SendAudio) {
		g.Publish = append(g.Publish, SourceMicrophone)
	}
	if slices.Contains(caps, Screenshare) {
		g.Publish = append(g.Publish, SourceScreenShare, SourceScreenShareAudio)
	}
	return g
}

// JoinSFUToken is the SFU token of the participant a joinCall just made
// (CallJoin.sfuToken), or nil when its session's SFU node signs no tokens
// (it has no key and secret in SFU_NODES, or is no longer configured).
func (s *Service) JoinSFUToken(ctx context.Context, j *store.CallJoin) (*SFUToken, error) {
	me, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	if j.Participant.UserID != me.UserID {
		return nil, auth.Forbidden("participant %q belongs to another user", j.Participant.ID)
	}
	return s.sfuTokenFor(ctx, j.Participant, j.Session.SFU.ID, j.Role, me.IsAdmin())
}

// RefreshSFUToken issues a fresh SFU token for one of the caller's
// participants still in its call, with the grants it has now; nil when
// its session's SFU node signs no tokens.
func (s *Service) RefreshSFUToken(ctx context.Context, participant string) (*SFUToken, error) {
	me, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	s.runtime()
	p, err := s.ownParticipant(ctx, me, "participant", participant)
	if err != nil {
		return nil, err
	}
	return s.freshSFUToken(ctx, p, me.IsAdmin())
}

// freshSFUToken signs participant p's token with what it may do now
// (admin: its user is an admin); CONFLICT when it has left its session.
func (s *Service) freshSFUToken(ctx context.Context, p *store.CallParticipant, admin bool) (*SFUToken, error) {
	role, err := s.store.CallMembership(ctx, p.CallID, p.UserID)
	if err != nil {
		return nil, err
	}
	live, err := s.store.LiveCallSessions(ctx, []string{p.CallID})
	if err != nil {
		return nil, err
	}
	if live[0] == nil || live[0].ID != p.SessionID {
		return nil, store.Conflict("participant %q has left the call; join it again for a new participant", p.ID)
	}
	return s.sfuTokenFor(ctx, p, live[0].SFU.ID, role, admin)
}

// withSFUToken returns e, or for the stream's own participant's
// permissions.updated a copy of it with a fresh SFU token (the event is
// shared by every stream of the node, and the token is this one's alone).
// A failure leaves the token out: the client can still refreshSFUToken.
func (s *Service) withSFUToken(ctx context.Context, me *store.CallParticipant, e *CallEvent) *CallEvent {
	if e.Type != EventPermissionsUpdated || e.Participant == nil || e.Participant.ID != me.ID {
		return e
	}
	caller, err := auth.Caller(ctx)
	if err != nil {
		return e
	}
	tok, err := s.freshSFUToken(ctx, me, caller.IsAdmin())
	if err != nil || tok == nil {
		if err != nil {
			s.log.Warn("callEvents: fresh SFU token", "participant", me.ID, "err", err)
		}
		return e
	}
	c := *e
	c.SFUToken = tok
	return &c
}

// sfuTokenFor signs a token for participant p on the session's SFU node,
// or returns nil when that node has no credentials. It needs no state
// but SFU_NODES, so any Brook node can issue one (a callEvents stream
// can mint a participant's fresh token when its grants change).
func (s *Service) sfuTokenFor(ctx context.Context, p *store.CallParticipant, nodeID, role string, admin bool) (*SFUToken, error) {
	node, ok := s.configuredNode(nodeID)
	if !ok || !node.SignsTokens() {
		return nil, nil
	}
	grants, err := s.participantGrants(ctx, p, role, admin)
	if err != nil {
		return nil, err
	}
	name := ""
	switch u, err := s.store.User(ctx, p.UserID); {
	case err == nil:
		if u.Name != nil {
			name = *u.Name
		}
	case !errors.Is(err, store.ErrNotFound):
		return nil, err
	}
	return signSFUToken(node, p.SessionID.String(), p.ID.String(), name, grants, time.Now(), s.sfuTokenTTL)
}

// configuredNode returns the SFU node of SFU_NODES with this id, secret
// included (sfuNode gives its API form).
func (s *Service) configuredNode(id string) (sfu.Node, bool) {
	for _, n := range s.nodes {
		if n.ID == id {
			return n, true
		}
	}
	return sfu.Node{}, false
}

// sfuClaims are a LiveKit access token's claims: iss is the API key, sub
// the participant's identity, and video its grant in the room.
type sfuClaims struct {
	jwt.RegisteredClaims
	Name  string        `json:"name,omitempty"`
	Video sfuVideoGrant `json:"video"`
}

// sfuVideoGrant is LiveKit's video grant. The permissions are never
// omitted: LiveKit reads an absent one as granted.
type sfuVideoGrant struct {
	Room              string   `json:"room"`
	RoomJoin          bool     `json:"roomJoin"`
	CanPublish        bool     `json:"canPublish"`
	CanPublishSources []string `json:"canPublishSources,omitempty"`
	CanSubscribe      bool     `json:"canSubscribe"`
	CanPublishData    bool     `json:"canPublishData"`
}

// signSFUToken signs an HS256 token for the room (the session id) and
// identity (the participant id) with the node's secret, valid from now
// for ttl.
func signSFUToken(node sfu.Node, room, identity, name string, g SFUGrants, now time.Time, ttl time.Duration) (*SFUToken, error) {
	now = now.Truncate(time.Second) // JWT times are whole seconds
	exp := now.Add(ttl)
	claims := sfuClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    node.APIKey,
			Subject:   identity,
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(exp),
		},
		Name: name,
		Video: sfuVideoGrant{
			Room:              room,
			RoomJoin:          true,
			CanPublish:        len(g.Publish) > 0,
			CanPublishSources: g.Publish,
			CanSubscribe:      g.Subscribe,
			CanPublishData:    g.PublishData,
		},
	}
	token, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(node.APISecret))
	if err != nil {
		return nil, fmt.Errorf("calls: sign SFU token: %w", err)
	}
	return &SFUToken{Token: token, ExpiresAt: exp}, nil
}
