package ephemeral_test

import (
	"context"
	"testing"
	"time"
)

func TestPresenceFollowsConnections(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	until := time.Now().Add(time.Minute)
	wasOffline, err := s.MarkOnline(ctx, "sam", "c1", until)
	if err != nil || !wasOffline {
		t.Fatalf("first connection: %v %v", wasOffline, err)
	}
	if wasOffline, _ = s.MarkOnline(ctx, "sam", "c2", until); wasOffline {
		t.Fatal("second connection: was already online")
	}
	online, err := s.Online(ctx, []string{"sam", "tess"})
	if err != nil || !online[0] || online[1] {
		t.Fatalf("online: %v %v", online, err)
	}
	if nowOffline, _ := s.MarkOffline(ctx, "sam", "c1"); nowOffline {
		t.Fatal("one connection left: still online")
	}
	if nowOffline, _ := s.MarkOffline(ctx, "sam", "c2"); !nowOffline {
		t.Fatal("last connection closed: offline")
	}
	// A lease that runs out (a crashed node) counts as offline.
	_, _ = s.MarkOnline(ctx, "uma", "c3", time.Now().Add(50*time.Millisecond))
	time.Sleep(100 * time.Millisecond)
	if online, _ := s.Online(ctx, []string{"uma"}); online[0] {
		t.Fatal("expired lease still online")
	}
	// A refresh restores presence Redis lost.
	_ = s.Redis().FlushDB(ctx).Err()
	if err := s.RefreshPresence(ctx, map[string]string{"c4": "vic"}, time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if online, _ := s.Online(ctx, []string{"vic"}); !online[0] {
		t.Fatal("refresh did not restore presence")
	}
}
