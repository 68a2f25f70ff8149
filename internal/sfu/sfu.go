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
}

// Default is the node used when SFU_NODES is not set: a local SFU for
// development, so `make run` works with zero configuration.
var Default = []Node{{ID: "local", URL: "ws://127.0.0.1:7880"}}

// MaxNodes caps the number of configured nodes.
const MaxNodes = 1000

// Parse reads an SFU_NODES value: entries separated by ";", each
// "id=url" or "id@region=url", for example
//
//	eu-1@eu-west=wss://sfu-eu-1.example:443;us-1@us-east=wss://sfu-us-1.example:443
//
// Ids are 1 to 64 letters, digits or "_-."; URLs are absolute ws, wss,
// http or https URLs. An empty value returns no nodes.
func Parse(spec string) ([]Node, error) {
	var nodes []Node
	seen := map[string]bool{}
	for i, entry := range strings.Split(spec, ";") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		name, rawURL, ok := strings.Cut(entry, "=")
		if !ok {
			return nil, fmt.Errorf("entry %d (%q): want id=url or id@region=url", i+1, entry)
		}
		id, region, _ := strings.Cut(strings.TrimSpace(name), "@")
		n := Node{ID: strings.TrimSpace(id), Region: strings.TrimSpace(region), URL: strings.TrimSpace(rawURL)}
		if err := CheckID(n.ID); err != nil {
			return nil, fmt.Errorf("entry %d (%q): %w", i+1, entry, err)
		}
		if strings.Contains(name, "@") && CheckID(n.Region) != nil {
			return nil, fmt.Errorf("entry %d (%q): region must be 1 to 64 letters, digits or _-.", i+1, entry)
		}
		u, err := url.Parse(n.URL)
		if err != nil || u.Host == "" || (u.Scheme != "wss" && u.Scheme != "ws" && u.Scheme != "https" && u.Scheme != "http") {
			return nil, fmt.Errorf("entry %d (%q): %q is not an absolute ws, wss, http or https URL", i+1, entry, n.URL)
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
