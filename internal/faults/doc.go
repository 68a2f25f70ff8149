// Package faults holds Brook's fault tests and nothing else: integration
// tests that start real PostgreSQL and Redis servers and real Brook server
// and worker processes (the binary built from this module), then kill,
// restart or starve them while traffic flows, and check that nothing
// acknowledged is lost or duplicated and that service comes back.
//
// Each test owns its servers (they are not shared with other tests of the
// package), so a killed PostgreSQL or Redis never disturbs another test.
// Every test logs its figure with t.Logf; run them with
//
//	go test -count=1 -v ./faults/
//
// The README's "Reliability and security" section lists each test, what it
// proves and the figure from the last run. The package has no non-test
// code: it is not imported by anything.
package faults
