// Package pgha holds the tests of Brook on PostgreSQL with a streaming
// replica: reads routed to the replica, read-your-writes, lag drop-out,
// and the primary's failover to the promoted replica. They start their own
// servers (internal/local) and run only under make test-cluster
// (BROOK_CLUSTER_TESTS).
package pgha
