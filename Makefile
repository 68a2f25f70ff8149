# Brook: the two commands are `make run` and `make test`.
GO ?= go

.PHONY: run cluster web test test-cluster test-e2e fuzz deps weed generate check-generate vet ci

## run: start Brook with zero configuration (private PostgreSQL and Redis under ./.data);
## builds the demo app at /app/ when npm is present (skip with SKIP_WEB=1)
# Built, then exec'd rather than `go run .`: on Ctrl-C `go run` exits 1
# whatever its child did, and make reports that as an error. Exec'd, Brook
# is the recipe, and its clean shutdown is the recipe's status.
run: deps web
	$(GO) build -o .data/brook . && BROOK_DEV=true exec .data/brook

## cluster: three Brook nodes behind HAProxy (health-checked, WebSocket-aware), sharing one
## PostgreSQL and one Redis, all under .data/cluster; prints the one URL (CLUSTER_PORT, 8080)
CLUSTER_PORT ?= 8080
cluster: deps web
	@scripts/deps cluster
	$(GO) build -o .data/brook . && $(GO) build -o .data/brook-cluster ./internal/cluster/run && \
		exec .data/brook-cluster -bin .data/brook -dir .data/cluster -port $(CLUSTER_PORT)

## web: build the demo app and the self-hosted GraphiQL into web/dist
web:
	@if [ -n "$(SKIP_WEB)" ]; then echo "web: skipped (SKIP_WEB set): / serves GraphiQL from a CDN and /app/ is off"; \
	elif ! command -v npm >/dev/null 2>&1; then echo "web: npm not found, so the demo app at /app/ is off and / serves GraphiQL from a CDN; install Node.js 20+ to build it, or run 'make run SKIP_WEB=1' to skip this step"; \
	else cd web && npm ci --no-audit --no-fund --loglevel=error && npm run build --silent; fi

## test: run every test against real PostgreSQL and Redis (private throwaway servers),
## then a short pass of every fuzz target
test: deps weed
	BROOK_S3_TESTS=required $(GO) test -count=1 -timeout 15m ./...
	scripts/fuzz 20000x

## test-cluster: the scale-out tests, which start clusters (a three-master Redis
## Cluster, PostgreSQL replicas, PgBouncer, HAProxy): the product suites run
## against each, and the failover tests kill their masters and primaries
test-cluster: deps
	@scripts/deps cluster
	BROOK_CLUSTER_TESTS=required $(GO) test -count=1 -timeout 20m -run 'Cluster|Failover' ./internal/local/
	BROOK_CLUSTER_TESTS=required $(GO) test -count=1 -timeout 10m -run Failover ./internal/cluster/
	BROOK_TEST_PG=pgbouncer $(GO) test -count=1 -timeout 15m ./migrations ./chat ./feeds ./calls ./resolvers ./workers
	BROOK_CLUSTER_TESTS=required $(GO) test -count=1 -timeout 10m -run PgBouncer ./internal/faults/
	BROOK_TEST_REDIS=cluster $(GO) test -count=1 -timeout 20m ./chat ./feeds ./calls ./internal/bus
	BROOK_CLUSTER_TESTS=required $(GO) test -count=1 -timeout 10m -run 'RedisCluster.*Failover|ClusterFailover' ./internal/bus ./internal/faults
	BROOK_CLUSTER_TESTS=required $(GO) test -count=1 -run Cluster ./internal/ephemeral/
	BROOK_CLUSTER_TESTS=required $(GO) test -count=1 -timeout 10m ./internal/pgha/
	BROOK_TEST_PG=replica $(GO) test -count=1 -timeout 15m ./chat ./feeds ./resolvers

## test-e2e: the client interoperability suite (graphql-ws, subscriptions-transport-ws,
## Apollo Client, graphql-js) and the browser tests (Chromium) against a real server;
## screenshots land in e2e/artifacts/
test-e2e:
	@scripts/deps browser
	cd web && npm ci --no-audit --no-fund --loglevel=error && npm run build --silent
	cd e2e && npm ci --no-audit --no-fund --loglevel=error
	$(GO) build -o e2e/.bin/brook .
	cd e2e && BROOK_BIN=$(CURDIR)/e2e/.bin/brook npm test

## fuzz: a long pass of every Go fuzz target (FUZZ_BUDGET executions each), of the
## GraphQL fuzzer against a live node (FUZZ_GRAPHQL_OPS operations) and of the unread
## counts property (FUZZ_UNREAD_OPS operations), a new seed each time
FUZZ_BUDGET ?= 2000000x
FUZZ_GRAPHQL_OPS ?= 30000
FUZZ_UNREAD_OPS ?= 3000
fuzz: deps
	scripts/fuzz $(FUZZ_BUDGET)
	BROOK_GQLFUZZ_OPS=$(FUZZ_GRAPHQL_OPS) BROOK_GQLFUZZ_SEED=$$(date +%s) $(GO) test -count=1 -run TestGraphQLFuzz -v ./internal/api/ | grep -E "graphql fuzz|FAIL|ok"
	BROOK_UNREAD_OPS=$(FUZZ_UNREAD_OPS) BROOK_UNREAD_SEED=$$(date +%s) $(GO) test -count=1 -run TestChatUnreadSilenceProperty -v ./chat/ | grep -E "seed|checked|FAIL|ok"

## deps: make sure the PostgreSQL and Redis server binaries are installed
deps:
	@scripts/deps

## weed: build SeaweedFS (the S3-compatible server the uploads tests start)
## into .data/bin, once per version (a few minutes the first time)
weed:
	@scripts/weed >/dev/null

## generate: regenerate graph/ from schema/*.graphqls
generate:
	$(GO) generate ./...

## check-generate: fail if the committed generated code is stale
check-generate: generate
	@git diff --exit-code -- graph resolvers gqlgen.yml || (echo "generated code is stale: run 'make generate' and commit" >&2; exit 1)
	@test -z "$$(git status --porcelain -- graph resolvers)" || (git status --porcelain -- graph resolvers; echo "generate created files: commit them" >&2; exit 1)

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); echo "gofmt needed" >&2; exit 1)

## ci: what CI runs on a clean clone
ci: vet test check-generate

.PHONY: bench-feeds bench-chat bench-calls

## bench-feeds, bench-chat, bench-calls: measure and print the README's tables
bench-feeds: deps
	$(GO) run ./internal/bench feeds

bench-chat: deps
	$(GO) run ./internal/bench chat

bench-calls: deps
	$(GO) run ./internal/bench calls

.PHONY: soak

## soak: mixed traffic (feeds, chat, calls) on two nodes for SOAK_DURATION after a
## minute of warm-up, with SOAK_CONNECTIONS WebSocket subscriptions; prints goroutines
## and memory at the start and the end, errors and p99s
SOAK_DURATION ?= 10m
SOAK_CONNECTIONS ?= 2000
SOAK_RATE ?= 100
soak: deps
	$(GO) run ./internal/bench soak -- -duration $(SOAK_DURATION) -connections $(SOAK_CONNECTIONS) -rate $(SOAK_RATE)
