package bus

// Tracing: an event published under a traced context carries its W3C
// trace context in a header line before the payload (tracing.Stamp), and
// the node that receives it delivers it to its local subscribers in a
// span of that trace. Every node strips the header, traced or not, so
// subscribers always see the payload alone.

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/brookhq/brook/internal/tracing"
)

// stamp prefixes data with the trace context of ctx when this bus traces.
func (b *Bus) stamp(ctx context.Context, data []byte) []byte {
	if b.tracer == nil {
		return data
	}
	return tracing.Stamp(ctx, data)
}

// traceDelivery starts the span of handing one event to this node's
// subscribers of topic, and returns what ends it. One span per event and
// node, not per subscriber: a topic may have thousands here.
func (b *Bus) traceDelivery(parent, state, topic string, subscribers int) func() {
	ctx := tracing.Remote(context.Background(), parent, state)
	_, span := b.tracer.Start(ctx, "deliver "+topicKind(topic), trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(attribute.String("messaging.destination.name", topic),
			attribute.Int("brook.bus.subscribers", subscribers)))
	return func() { span.End() }
}

// topicKind is a topic's kind ("feed", "channel"): span names stay few
// while topics are many.
func topicKind(topic string) string {
	for i := 0; i < len(topic); i++ {
		if topic[i] == ':' {
			return topic[:i]
		}
	}
	return topic
}
