// Package sfu describes the SFU (selective forwarding unit) media servers
// that host call sessions, and picks one for a session by rendezvous
// (highest-random-weight) hashing of the call id over the healthy nodes.
//
// Rendezvous hashing gives every (node, call) pair a pseudo-random weight
// and picks the node with the highest weight. Every Brook node computes the
// same answer without coordination; taking one node of N out (draining it)
// moves exactly the calls that were on it, and adding one moves about
// 1/(N+1) of them, all to the new node.
package sfu

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Node is one SFU media server.
type Node struct {
	// ID names the node in SFU_NODES, in sessions and in drain requests.
	ID string
	// URL is where participants connect their media (wss://...).
	URL string
	// Region is where the node runs, if configured ("" otherwise).
	Region string
	// APIKey and APISecret are the node's own credentials (key= and
	// secret= in SFU_NODES), with which Brook signs its participants'
	// tokens; both empty when the node has none (then no token).
	APIKey, APISecret string
}

// SignsTokens reports whether the node has credentials to sign
// participants' tokens with.
func (n Node) SignsTokens() bool { return n.APIKey != "" && n.APISecret != "" }

// String shows the node without its secret, so that logs and test
// failures never print it.
func (n Node) String() string {
	s := n.ID
	if n.Region != "" {
		s += "@" + n.Region
	}
	s += "=" + n.URL
	if n.APIKey != "" {
		s += " key=" + n.APIKey + " secret=<redacted>"
	}
	return s
}

// GoString is String, for %#v.
func (n Node) GoString() string { return n.String() }

// Default is the node used when SFU_NODES is not set: a local SFU for
// development, so `make run` works with zero configuration. Its URL and
// credentials are those of `livekit-server --dev`.
var Default = []Node{{ID: "local", URL: "ws://127.0.0.1:7880", APIKey: "devkey", APISecret: "secret"}}

// MaxNodes caps the number of configured nodes.
const MaxNodes = 1000

// Parse reads an SFU_NODES value: entries separated by ";", each
// "id=url" or "id@region=url", optionally followed, after white space, by
// the node's API key and secret as "key=K secret=S", for example
//
//	eu-1@eu-west=wss://sfu-eu-1.example:443 key=APIeu1 secret=4f9c...;us-1@us-east=wss://sfu-us-1.example:443
//
// Ids are 1 to 64 letters, digits or "_-."; URLs are absolute ws, wss,
// http or https URLs; a key is 1 to 256 printable characters and a secret
// at least 1 (neither with white space or ";"), and a node has both or
// neither. An empty value returns no nodes. Errors never show a secret.
func Parse(spec string) ([]Node, error) {
	var nodes []Node
	seen := map[string]bool{}
	for i, entry := range strings.Split(spec, ";") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		shown := redacted(entry)
		name, rest, ok := strings.Cut(entry, "=")
		if !ok {
			return nil, fmt.Errorf("entry %d (%q): want id=url or id@region=url", i+1, shown)
		}
		// The URL is the first word after "=", the credentials the rest.
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			fields = []string{""}
		}
		id, region, hasRegion := strings.Cut(name, "@")
		n := Node{ID: strings.TrimSpace(id), Region: strings.TrimSpace(region), URL: fields[0]}
		if err := CheckID(n.ID); err != nil {
			return nil, fmt.Errorf("entry %d (%q): %w", i+1, shown, err)
		}
		if hasRegion && CheckID(n.Region) != nil {
			return nil, fmt.Errorf("entry %d (%q): region must be 1 to 64 letters, digits or _-.", i+1, shown)
		}
		u, err := url.Parse(n.URL)
		if err != nil || u.Host == "" || (u.Scheme != "wss" && u.Scheme != "ws" && u.Scheme != "https" && u.Scheme != "http") {
			return nil, fmt.Errorf("entry %d (%q): %q is not an absolute ws, wss, http or https URL", i+1, shown, n.URL)
		}
		if err := n.parseCredentials(fields[1:]); err != nil {
			return nil, fmt.Errorf("entry %d (%q): %w", i+1, shown, err)
		}
		if seen[n.ID] {
			return nil, fmt.Errorf("entry %d: node id %q appears twice", i+1, n.ID)
		}
		seen[n.ID] = true
		nodes = append(nodes, n)
	}
	if len(nodes) > MaxNodes {
		return nil, fmt.Errorf("%d nodes; at most %d", len(nodes), MaxNodes)
	}
	return nodes, nil
}

// parseCredentials reads an entry's "key=K secret=S" fields.
func (n *Node) parseCredentials(fields []string) error {
	for _, f := range fields {
		name, value, _ := strings.Cut(f, "=")
		var dst *string
		switch name {
		case "key":
			dst = &n.APIKey
		case "secret":
			dst = &n.APISecret
		default:
			return fmt.Errorf("unknown setting %q: after the URL, only key= and secret= may follow", name)
		}
		if *dst != "" {
			return fmt.Errorf("%s= is given twice", name)
		}
		if value == "" {
			return fmt.Errorf("%s= is empty", name)
		}
		*dst = value
	}
	if (n.APIKey == "") != (n.APISecret == "") {
		return errors.New("give both key= and secret=, or neither")
	}
	if len(n.APIKey) > 256 {
		return errors.New("key= is longer than 256 characters")
	}
	return nil
}

// redacted is an entry as an error shows it: its secret hidden.
func redacted(entry string) string {
	fields := strings.Fields(entry)
	for i, f := range fields {
		if strings.HasPrefix(f, "secret=") {
			fields[i] = "secret=<redacted>"
		}
	}
	return strings.Join(fields, " ")
}

// CheckID checks a node id (or region): 1 to 64 letters, digits or "_-.".
func CheckID(id string) error {
	if id == "" || len(id) > 64 {
		return errors.New("node id must be 1 to 64 characters")
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.') {
			return fmt.Errorf("node id %q: use letters, digits and _-. only", id)
		}
	}
	return nil
}

// Weight is the rendezvous weight of node for key: FNV-1a over the node id,
// a separator and the key, finished with a 64-bit mixer so that similar
// keys get unrelated weights. It is stable across processes and versions
// of Brook; changing it would move new sessions (live ones keep their node).
func Weight(nodeID, key string) uint64 {
	const (
		offset = 14695981039346656037
		prime  = 1099511628211
	)
	h := uint64(offset)
	for i := 0; i < len(nodeID); i++ {
		h ^= uint64(nodeID[i])
		h *= prime
	}
	h ^= 0xff // separator: ("ab","c") and ("a","bc") differ
	h *= prime
	for i := 0; i < len(key); i++ {
		h ^= uint64(key[i])
		h *= prime
	}
	// fmix64 from MurmurHash3.
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// Pick returns the node with the highest weight for key among nodes,
// skipping those for which skip returns true (drained ones). ok is false
// when no node is left. Ties (practically impossible) go to the smaller id.
func Pick(nodes []Node, key string, skip func(id string) bool) (best Node, ok bool) {
	var bestW uint64
	for _, n := range nodes {
		if skip != nil && skip(n.ID) {
			continue
		}
		w := Weight(n.ID, key)
		if !ok || w > bestW || (w == bestW && n.ID < best.ID) {
			best, bestW, ok = n, w, true
		}
	}
	return best, ok
}
