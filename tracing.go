package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/brookhq/brook/internal/tracing"
)

// openTracing starts exporting traces when the standard
// OTEL_EXPORTER_OTLP_* variables name a collector; otherwise it returns
// nil and nothing is traced.
func openTracing(ctx context.Context, log *slog.Logger) (*tracing.Provider, error) {
	p, err := tracing.FromEnv(ctx, tracing.Options{})
	if err != nil {
		return nil, err
	}
	if p != nil {
		log.Info("exporting traces over OTLP")
	}
	return p, nil
}

// shutdownTracing flushes the spans still held, for at most 5 seconds: a
// collector that is away must not hold the process up.
func shutdownTracing(p *tracing.Provider, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		log.Warn("traces not flushed", "err", err)
	}
}
