package chat_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/brookhq/brook/internal/brooktest"
)

// BenchmarkUnreadCounts reads the unread counts of a user in 1,000
// channels, 5 of them above the push limit, as `make bench-chat` does:
// one Redis round trip and the decoding of its reply.
func BenchmarkUnreadCounts(b *testing.B) {
	n := env.StartNode(b, brooktest.NodeOptions{Workers: -1})
	s := n.Store
	ctx := context.Background()
	user := fmt.Sprint("heavy-", time.Now().UnixNano())
	db := s.DB()
	if _, err := db.Exec(ctx, `INSERT INTO users (id, name) VALUES ($1, $1), ('other', 'other') ON CONFLICT DO NOTHING`, user); err != nil {
		b.Fatal(err)
	}
	if _, err := db.Exec(ctx, `
		INSERT INTO channels (id, type, created_by, last_seq, last_pos, member_count)
		SELECT 'messaging:' || $1 || '-' || i, 'messaging', 'other', 1 + i % 50, 1 + i % 50, CASE WHEN i % 200 = 0 THEN 5000 ELSE 20 END
		FROM generate_series(1, 1000) AS i`, user); err != nil {
		b.Fatal(err)
	}
	if _, err := db.Exec(ctx, `
		INSERT INTO channel_members (channel_id, user_id, role, last_read_seq)
		SELECT 'messaging:' || $1 || '-' || i, $1, 'member', (i * 7) % (1 + i % 50)
		FROM generate_series(1, 1000) AS i`, user); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_, _ = db.Exec(context.Background(), `DELETE FROM channels WHERE id LIKE 'messaging:' || $1 || '-%'`, user)
		_, _ = db.Exec(context.Background(), `DELETE FROM users WHERE id = $1`, user)
	})
	truth, err := s.UnreadCountsFromDB(ctx, user)
	if err != nil || truth.UnreadChannels < 900 {
		b.Fatalf("truth: %+v %v", truth, err)
	}
	if _, err := n.Chat.UnreadCounts(ctx, user); err != nil { // builds the counters
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		c, err := n.Chat.UnreadCounts(ctx, user)
		if err != nil || c.TotalUnreadCount != truth.TotalUnreadCount {
			b.Fatalf("counts: %d, want %d (%v)", c.TotalUnreadCount, truth.TotalUnreadCount, err)
		}
	}
}
