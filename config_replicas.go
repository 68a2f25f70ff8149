package main

import "strings"

// replicaURLs splits DATABASE_REPLICA_URLS, a comma-separated list. A
// comma inside one URL (a multi-host replica URL) is not supported: name
// each replica on its own.
func replicaURLs(v string) []string {
	var out []string
	for _, u := range strings.Split(v, ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	return out
}
