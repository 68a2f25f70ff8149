package node

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/brookhq/brook/store"
)

// replicaCollector exports the read replicas' state as the store's
// checker last saw it, read at scrape time.
type replicaCollector struct {
	st                  *store.Store
	healthy, lag, reads *prometheus.Desc
}

// registerReplicaMetrics registers the read replicas' metrics when the
// store has replicas (DATABASE_REPLICA_URLS); without them there are none.
func registerReplicaMetrics(reg prometheus.Registerer, st *store.Store) error {
	if reg == nil || len(st.Replicas()) == 0 {
		return nil
	}
	c := &replicaCollector{st: st,
		healthy: prometheus.NewDesc("brook_pg_replica_healthy", "1 when the read replica serves reads, 0 when it is out of rotation (lagging past BROOK_REPLICA_MAX_LAG, failing, or promoted).", []string{"replica"}, nil),
		lag:     prometheus.NewDesc("brook_pg_replica_lag_seconds", "How far the read replica's replay was behind the primary at the last check (-1: unknown, it did not answer).", []string{"replica"}, nil),
		reads:   prometheus.NewDesc("brook_pg_lagging_reads_total", "Reads that may lag (feed pages, history, search, lists), by where they ran: replica, or primary for want of a healthy replica.", []string{"target"}, nil),
	}
	if err := reg.Register(c); err != nil {
		return fmt.Errorf("node: replica metrics: %w", err)
	}
	return nil
}

func (c *replicaCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.healthy
	ch <- c.lag
	ch <- c.reads
}

func (c *replicaCollector) Collect(ch chan<- prometheus.Metric) {
	for _, r := range c.st.Replicas() {
		healthy := 0.0
		if r.Healthy {
			healthy = 1
		}
		lag := r.Lag.Seconds()
		if r.Lag < 0 {
			lag = -1
		}
		ch <- prometheus.MustNewConstMetric(c.healthy, prometheus.GaugeValue, healthy, r.Name)
		ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, lag, r.Name)
	}
	onReplica, onPrimary := c.st.LaggingReads()
	ch <- prometheus.MustNewConstMetric(c.reads, prometheus.CounterValue, float64(onReplica), "replica")
	ch <- prometheus.MustNewConstMetric(c.reads, prometheus.CounterValue, float64(onPrimary), "primary")
}
