// Package client is a small GraphQL client for Brook: operations over HTTP
// and over WebSocket with the graphql-transport-ws protocol. Tests,
// benchmarks, the fuzzer and the soak run use it; apps use their own
// GraphQL clients (graphql-ws, Apollo, urql).
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Error is one GraphQL error of a response.
type Error struct {
	Message    string         `json:"message"`
	Path       []any          `json:"path,omitempty"`
	Extensions map[string]any `json:"extensions,omitempty"`
}

// Code returns the error's extensions.code.
func (e Error) Code() string { s, _ := e.Extensions["code"].(string); return s }

func (e Error) Error() string { return e.Code() + ": " + e.Message }

// Response is a GraphQL response.
type Response struct {
	// Status is the HTTP status (0 over WebSocket).
	Status int             `json:"-"`
	Data   json.RawMessage `json:"data"`
	Errors []Error         `json:"errors,omitempty"`
}

// Code returns the first error's code, or "" when there is none.
func (r *Response) Code() string {
	if len(r.Errors) == 0 {
		return ""
	}
	return r.Errors[0].Code()
}

// Err returns the first error, or nil.
func (r *Response) Err() error {
	if len(r.Errors) == 0 {
		return nil
	}
	return r.Errors[0]
}

// Decode unmarshals the data into v; a response with errors is an error.
func (r *Response) Decode(v any) error {
	if err := r.Err(); err != nil {
		return err
	}
	if err := json.Unmarshal(r.Data, v); err != nil {
		return fmt.Errorf("client: decode %.200s: %w", r.Data, err)
	}
	return nil
}

// Vars are GraphQL variables.
type Vars map[string]any

// Client runs operations over HTTP against one Brook server.
type Client struct {
	// URL is the server's base URL, like http://127.0.0.1:8080.
	URL string
	// Token is sent as a Bearer token when set.
	Token string
	// HTTP is the HTTP client (default: one with a 30 s timeout).
	HTTP *http.Client
}

var defaultHTTP = &http.Client{
	Timeout:   30 * time.Second,
	Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 0, IdleConnTimeout: time.Minute},
}

// New returns a client for the server at baseURL acting with token.
func New(baseURL, token string) *Client { return &Client{URL: baseURL, Token: token} }

// WithToken returns a copy of c that acts with another token.
func (c *Client) WithToken(token string) *Client {
	cp := *c
	cp.Token = token
	return &cp
}

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return defaultHTTP
}

// Do runs an operation with a POST request.
func (c *Client) Do(ctx context.Context, query string, vars Vars) (*Response, error) {
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		return nil, fmt.Errorf("client: encode: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL+"/query", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	return c.send(req)
}

// Get runs a query with a GET request.
func (c *Client) Get(ctx context.Context, query string) (*Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.URL+"/query?query="+url.QueryEscape(query), nil)
	if err != nil {
		return nil, err
	}
	return c.send(req)
}

func (c *Client) send(req *http.Request) (*Response, error) {
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := &Response{Status: resp.StatusCode}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return nil, fmt.Errorf("client: %s %s: status %d, undecodable body: %w", req.Method, req.URL.Path, resp.StatusCode, err)
	}
	return out, nil
}

// Run runs an operation and decodes its data into v (when not nil); any
// GraphQL error is returned as an error.
func (c *Client) Run(ctx context.Context, query string, vars Vars, v any) error {
	r, err := c.Do(ctx, query, vars)
	if err != nil {
		return err
	}
	if v == nil {
		return r.Err()
	}
	return r.Decode(v)
}

// WebsocketURL turns a server's base URL into its WebSocket endpoint.
func WebsocketURL(baseURL string) string {
	return "ws" + strings.TrimPrefix(baseURL, "http") + "/query"
}
