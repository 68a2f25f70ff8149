// Package auth issues and verifies Brook's access tokens (JWTs signed HS256
// with the server's secret) and carries the caller's identity in a context.
package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	lru "github.com/hashicorp/golang-lru/v2"
)

// Errors the GraphQL layer maps to UNAUTHENTICATED and FORBIDDEN.
var (
	// ErrUnauthenticated means no valid token came with the request.
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrForbidden means the caller may not do what it asked.
	ErrForbidden = errors.New("forbidden")
)

// ReasonError says why a token was refused or an action forbidden. It matches
// ErrUnauthenticated or ErrForbidden.
type ReasonError struct {
	kind   error
	Reason string
}

func (e *ReasonError) Error() string { return e.Reason }

// Is makes errors.Is match the error's kind.
func (e *ReasonError) Is(target error) bool { return target == e.kind }

// Unauthenticated returns an ErrUnauthenticated with a reason.
func Unauthenticated(format string, args ...any) error {
	return &ReasonError{kind: ErrUnauthenticated, Reason: fmt.Sprintf(format, args...)}
}

// Forbidden returns an ErrForbidden with a reason.
func Forbidden(format string, args ...any) error {
	return &ReasonError{kind: ErrForbidden, Reason: fmt.Sprintf(format, args...)}
}

// Roles a token can carry.
const (
	RoleUser  = "user"
	RoleAdmin = "admin"
)

// Identity is who the caller is, as its token says.
type Identity struct {
	UserID string
	Role   string
	// Expires is when the token stops being valid (zero: never).
	Expires time.Time
}

// IsAdmin reports whether the caller has the admin role.
func (id Identity) IsAdmin() bool { return id.Role == RoleAdmin }

// claims is the token payload: user_id, optional role, and the registered
// claims (exp, nbf, iat) that jwt validates.
type claims struct {
	UserID string `json:"user_id"`
	Role   string `json:"role,omitempty"`
	jwt.RegisteredClaims
}

// Keys signs and verifies tokens with one secret.
type Keys struct {
	secret []byte
	parser *jwt.Parser
	now    func() time.Time
	// verified remembers the identities of tokens that passed: a client
	// sends the same token with every request, and parsing and checking
	// it again was 7% of the server's CPU for each sendSignal. A
	// remembered token's expiry is still checked on every use.
	verified *lru.Cache[string, Identity]
}

// leeway is the clock skew allowed when checking a token's times.
const leeway = 5 * time.Second

// verifiedTokens is how many verified tokens Keys remembers.
const verifiedTokens = 10_000

// MinSecretLen is the shortest secret Keys accepts: HS256 needs 256 bits.
const MinSecretLen = 32

// NewKeys returns Keys for secret, which must be at least MinSecretLen bytes.
func NewKeys(secret []byte) (*Keys, error) {
	if len(secret) < MinSecretLen {
		return nil, fmt.Errorf("auth: the JWT secret must be at least %d bytes, got %d", MinSecretLen, len(secret))
	}
	verified, err := lru.New[string, Identity](verifiedTokens)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	k := &Keys{secret: secret, now: time.Now, verified: verified}
	k.parser = jwt.NewParser(jwt.WithValidMethods([]string{"HS256"}), jwt.WithLeeway(leeway),
		jwt.WithTimeFunc(func() time.Time { return k.now() }))
	return k, nil
}

// Issue returns a signed token for userID. A zero ttl means no expiry.
func (k *Keys) Issue(userID string, admin bool, ttl time.Duration) (string, error) {
	c := claims{UserID: userID, RegisteredClaims: jwt.RegisteredClaims{IssuedAt: jwt.NewNumericDate(time.Now())}}
	if admin {
		c.Role = RoleAdmin
	}
	if ttl > 0 {
		c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(ttl))
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(k.secret)
	if err != nil {
		return "", fmt.Errorf("auth: sign token: %w", err)
	}
	return tok, nil
}

// Verify checks a token's signature and claims and returns the identity it
// carries. Every refusal matches ErrUnauthenticated and says why.
func (k *Keys) Verify(token string) (Identity, error) {
	if id, ok := k.verified.Get(token); ok {
		if !id.Expires.IsZero() && k.now().After(id.Expires.Add(leeway)) {
			k.verified.Remove(token)
			return Identity{}, Unauthenticated("the token has expired; get a new one")
		}
		return id, nil
	}
	id, err := k.verify(token)
	if err == nil {
		k.verified.Add(token, id)
	}
	return id, err
}

func (k *Keys) verify(token string) (Identity, error) {
	var c claims
	_, err := k.parser.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return k.secret, nil })
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return Identity{}, Unauthenticated("the token has expired; get a new one")
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return Identity{}, Unauthenticated("the token's signature is not valid for this server")
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return Identity{}, Unauthenticated("the token is not valid yet")
	case err != nil:
		return Identity{}, Unauthenticated("the token is malformed or not signed with HS256")
	}
	if c.UserID == "" {
		return Identity{}, Unauthenticated("the token has no user_id claim")
	}
	switch c.Role {
	case "", RoleUser:
		c.Role = RoleUser
	case RoleAdmin:
	default:
		return Identity{}, Unauthenticated("the token's role %q is not one of user or admin", truncate(c.Role, 40))
	}
	id := Identity{UserID: c.UserID, Role: c.Role}
	if c.ExpiresAt != nil {
		id.Expires = c.ExpiresAt.Time
	}
	return id, nil
}

// FromHeader extracts the token from an Authorization header value
// ("Bearer <token>"); a bare token is accepted too.
func FromHeader(v string) string {
	v = strings.TrimSpace(v)
	if strings.EqualFold(v, "bearer") {
		return ""
	}
	if len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
		return strings.TrimSpace(v[7:])
	}
	return v
}

type identityKey struct{}

// WithIdentity returns a context that carries the caller's identity.
func WithIdentity(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// FromContext returns the caller's identity, if the request was signed in.
func FromContext(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(Identity)
	return id, ok
}

// Caller returns the caller's identity or ErrUnauthenticated.
func Caller(ctx context.Context) (Identity, error) {
	id, ok := FromContext(ctx)
	if !ok {
		return Identity{}, Unauthenticated("sign in: send a token in the Authorization header")
	}
	return id, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
