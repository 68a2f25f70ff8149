package sfu

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

func nodes(n int) []Node {
	out := make([]Node, n)
	for i := range out {
		out[i] = Node{ID: fmt.Sprintf("sfu-%d", i), URL: fmt.Sprintf("wss://sfu-%d.example:443", i)}
	}
	return out
}

func callIDs(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("default:call-%d", i)
	}
	return out
}

func assign(ns []Node, keys []string, skip func(string) bool) map[string]string {
	out := make(map[string]string, len(keys))
	for _, k := range keys {
		n, ok := Pick(ns, k, skip)
		if !ok {
			panic("no node")
		}
		out[k] = n.ID
	}
	return out
}

// The same call id always gets the same node, whatever the order of the
// configured nodes, so every Brook node agrees without coordination.
func TestPickIsStable(t *testing.T) {
	t.Parallel()
	ns := nodes(7)
	reversed := make([]Node, len(ns))
	for i := range ns {
		reversed[len(ns)-1-i] = ns[i]
	}
	for _, k := range callIDs(2000) {
		a, _ := Pick(ns, k, nil)
		b, _ := Pick(ns, k, nil)
		c, _ := Pick(reversed, k, nil)
		if a != b || a != c {
			t.Fatalf("%s: %v, %v, %v", k, a, b, c)
		}
	}
}

// Removing (draining) one node of N moves exactly the calls that were on
// it: every call that moved was on the removed node, and every call that
// was on it moved. The moved fraction equals that node's share, about 1/N.
func TestRemovingANodeMovesOnlyItsCalls(t *testing.T) {
	t.Parallel()
	const calls = 20000
	for _, n := range []int{2, 3, 5, 10} {
		ns := nodes(n)
		keys := callIDs(calls)
		before := assign(ns, keys, nil)
		for _, removed := range ns {
			after := assign(ns, keys, func(id string) bool { return id == removed.ID })
			onRemoved, moved := 0, 0
			for _, k := range keys {
				if before[k] == removed.ID {
					onRemoved++
				}
				if before[k] != after[k] {
					moved++
					if before[k] != removed.ID {
						t.Fatalf("N=%d, removing %s moved %s from %s to %s", n, removed.ID, k, before[k], after[k])
					}
				} else if after[k] == removed.ID {
					t.Fatalf("N=%d: %s still on removed %s", n, k, removed.ID)
				}
			}
			if moved != onRemoved {
				t.Fatalf("N=%d, removing %s: moved %d, but %d were on it", n, removed.ID, moved, onRemoved)
			}
			// The share of one node is 1/N within a few standard deviations.
			want := float64(calls) / float64(n)
			if sd := math.Sqrt(want * (1 - 1/float64(n))); math.Abs(float64(moved)-want) > 5*sd {
				t.Fatalf("N=%d, removing %s moved %d of %d, want about %.0f", n, removed.ID, moved, calls, want)
			}
		}
	}
}

// Adding one node to N moves about 1/(N+1) of the calls, all of them to the
// new node.
func TestAddingANodeMovesAboutOneShare(t *testing.T) {
	t.Parallel()
	const calls = 20000
	keys := callIDs(calls)
	for _, n := range []int{1, 2, 4, 9} {
		ns := nodes(n + 1)
		before := assign(ns[:n], keys, nil)
		after := assign(ns, keys, nil)
		added := ns[n].ID
		moved := 0
		for _, k := range keys {
			if before[k] != after[k] {
				moved++
				if after[k] != added {
					t.Fatalf("N=%d: %s moved from %s to %s, not to the new node", n, k, before[k], after[k])
				}
			}
		}
		got, want := float64(moved)/calls, 1/float64(n+1)
		if math.Abs(got-want) > 0.02 {
			t.Fatalf("N=%d: adding a node moved %.4f of the calls, want %.4f ± 0.02", n, got, want)
		}
	}
}

// Calls spread evenly over the nodes.
func TestPickSpreadsEvenly(t *testing.T) {
	t.Parallel()
	const calls = 50000
	ns := nodes(8)
	counts := map[string]int{}
	for _, id := range assign(ns, callIDs(calls), nil) {
		counts[id]++
	}
	for _, n := range ns {
		if share := float64(counts[n.ID]) / calls; math.Abs(share-1.0/8) > 0.01 {
			t.Fatalf("%s got %.4f of the calls, want 0.125 ± 0.01", n.ID, share)
		}
	}
}

func TestPickWithEveryNodeSkipped(t *testing.T) {
	t.Parallel()
	if _, ok := Pick(nodes(3), "default:x", func(string) bool { return true }); ok {
		t.Fatal("picked a node although all are skipped")
	}
	if _, ok := Pick(nil, "default:x", nil); ok {
		t.Fatal("picked a node from none")
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	got, err := Parse(" eu-1@eu-west=wss://sfu-eu-1.example:443; us-1=wss://sfu-us-1.example ;")
	if err != nil {
		t.Fatal(err)
	}
	want := []Node{
		{ID: "eu-1", Region: "eu-west", URL: "wss://sfu-eu-1.example:443"},
		{ID: "us-1", URL: "wss://sfu-us-1.example"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if n, err := Parse(""); err != nil || len(n) != 0 {
		t.Fatalf("empty: %v %v", n, err)
	}
	for _, bad := range []string{
		"eu-1",                                // no URL
		"=wss://x.example",                    // no id
		"eu 1=wss://x.example",                // bad id
		"eu-1=sfu.example",                    // not absolute
		"eu-1=ftp://sfu.example",              // wrong scheme
		"a=wss://x.example;a=wss://y.example", // duplicate
		"a@=wss://x.example",                  // empty region
	} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q): no error", bad)
		} else if !strings.Contains(err.Error(), "entry") {
			t.Errorf("Parse(%q): error %q does not name the entry", bad, err)
		}
	}
}

// SFU_NODES entries may end with the node's API key and secret; entries
// without them read as before, and errors never show a secret.
func TestParseCredentials(t *testing.T) {
	t.Parallel()
	got, err := Parse("eu-1@eu-west=wss://sfu-eu-1.example:443 key=APIeu1 secret=s3cr3t==;us-1 = wss://sfu-us-1.example")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("got %d nodes", len(got))
	}
	eu, us := got[0], got[1]
	if eu.ID != "eu-1" || eu.Region != "eu-west" || eu.URL != "wss://sfu-eu-1.example:443" || eu.APIKey != "APIeu1" || eu.APISecret != "s3cr3t==" || !eu.SignsTokens() {
		t.Fatalf("eu-1: %+v", eu)
	}
	if us.ID != "us-1" || us.URL != "wss://sfu-us-1.example" || us.APIKey != "" || us.APISecret != "" || us.SignsTokens() {
		t.Fatalf("us-1: %+v", us)
	}
	for _, shown := range []string{fmt.Sprint(got), fmt.Sprintf("%v %+v %#v %s", eu, eu, eu, eu)} {
		if strings.Contains(shown, "s3cr3t") {
			t.Fatalf("printed the secret: %s", shown)
		}
	}
	for _, bad := range []string{
		"a=wss://x.example key=K",                        // no secret
		"a=wss://x.example secret=topsecret",             // no key
		"a=wss://x.example key=K secret=",                // empty secret
		"a=wss://x.example key=K secret=topsecret key=L", // key twice
		"a=wss://x.example key=K secret=topsecret x=1",   // unknown setting
		"a=wss://x.example key=K secret=topsecret extra", // stray word
		"a=wss://x.example key=" + strings.Repeat("k", 257) + " secret=topsecret",
	} {
		_, err := Parse(bad)
		if err == nil {
			t.Errorf("Parse(%q): no error", bad)
			continue
		}
		if !strings.Contains(err.Error(), "entry") {
			t.Errorf("Parse(%q): error %q does not name the entry", bad, err)
		}
		if strings.Contains(err.Error(), "topsecret") {
			t.Errorf("Parse(%q): error %q shows the secret", bad, err)
		}
	}
}
