package main

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// cpuMeter reads the CPU time every process of a benchmark has used so far:
// PostgreSQL (the postmaster and its backends), Redis, the Brook server (when
// there is one) and the load generator. A page's CPU by process is the
// figure a loaded machine disturbs least, and it says where a page's cost
// is when the page rate alone cannot.
type cpuMeter struct {
	postgres, redis, server func() time.Duration
}

// cpuSample is the CPU time of each process at one moment.
type cpuSample struct {
	postgres, redis, server, loadgen time.Duration
}

// newCPUMeter finds PostgreSQL's and Redis's processes of the harness; srv
// may be nil. PostgreSQL is read through a connection of its own, closed
// before it returns.
func newCPUMeter(ctx context.Context, h *harness, srv *server) (*cpuMeter, error) {
	db, err := pgx.Connect(ctx, h.env.DatabaseURL)
	if err != nil {
		return nil, err
	}
	defer db.Close(ctx)
	pg, err := postgresCPU(ctx, db)
	if err != nil {
		return nil, err
	}
	m := &cpuMeter{postgres: pg, redis: redisCPU(ctx, h.env.RedisURL), server: func() time.Duration { return 0 }}
	if srv != nil {
		m.server = srv.cpuOrZero
	}
	return m, nil
}

// sample reads every process's CPU time now.
func (m *cpuMeter) sample() cpuSample {
	return cpuSample{postgres: m.postgres(), redis: m.redis(), server: m.server(), loadgen: selfCPU()}
}

// perPage is the CPU each process used since s0, divided by pages, as one
// line: "PostgreSQL 0.412 ms, Redis 0.000 ms, server 0.000 ms, load
// generator 0.120 ms, together 0.532 ms".
func (m *cpuMeter) perPage(s0 cpuSample, pages int) string {
	s := m.sample()
	pg, rd, srv, lg := perPage(s.postgres-s0.postgres, pages), perPage(s.redis-s0.redis, pages),
		perPage(s.server-s0.server, pages), perPage(s.loadgen-s0.loadgen, pages)
	return fmt.Sprintf("PostgreSQL %s, Redis %s, server %s, load generator %s, together %s",
		msPer(pg), msPer(rd), msPer(srv), msPer(lg), msPer(pg+rd+srv+lg))
}
