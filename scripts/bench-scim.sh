#!/usr/bin/env bash
# SCIM load benchmark: serves scimsync on a free loopback port, first on a
# temporary SQLite database, then on a fresh Postgres database, both with
# real Redis, and drives it with cmd/scimsync-load in two modes:
#   create  POST /Users with unique userNames
#   filter  GET /Users?filter=userName eq "…" over pre-created users
# On Postgres it also runs pgbench on a two-insert transaction in the same
# database, so the create figure can be read as a ratio of what the
# database itself sustains.
#
# Environment (defaults in brackets):
#   PG_ADMIN_URL   Postgres to create the bench database in
#                  [postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable]
#   BENCH_DB       database created and dropped [scimsync_bench]
#   REDIS_URL      Redis [redis://127.0.0.1:6379/14; that default database
#                  is emptied before and after, since the api role leaves
#                  the queued converge tasks there]
#   ROLE           scimsync role to serve: api (SCIM only, the figure of the
#                  HTTP layer) or serve (with the worker converging) [api]
#   CONNS          concurrent connections [32]
#   SECONDS_EACH   duration of each run [20]
#   FILTER_USERS   users created for the filter run [2000]
#   BACKENDS       which to run [sqlite postgres]
#
# To profile the SCIM layer, see BenchmarkSCIM in inbound/bench_test.go
# (go test -run '^$' -bench BenchmarkSCIM -cpuprofile cpu.out ./inbound/).
BENCH_NAME=bench-scim
. "$(dirname "$0")/bench-lib.sh"

BENCH_DB=${BENCH_DB:-scimsync_bench}
OWN_REDIS=
[ -z "${REDIS_URL:-}" ] && OWN_REDIS=1
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/14}
ROLE=${ROLE:-api}
CONNS=${CONNS:-32}
SECONDS_EACH=${SECONDS_EACH:-20}
FILTER_USERS=${FILTER_USERS:-2000}
BACKENDS=${BACKENDS:-sqlite postgres}
PG_BENCH_URL=$(bench_db_url "$BENCH_DB")

WORK=$(mktemp -d "${TMPDIR:-/tmp}/scimsync-bench.XXXXXX")
DB_CREATED=
cleanup() {
  status=$?
  stop_server
  [ -n "$OWN_REDIS" ] && redis-cli -u "$REDIS_URL" flushdb >/dev/null 2>&1
  [ -z "$DB_CREATED" ] || drop_db "$BENCH_DB"
  [ "$status" -ne 0 ] && [ -f "$WORK/server.log" ] && tail -n 30 "$WORK/server.log" >&2
  rm -rf "$WORK"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step "build"
go build -o "$WORK/scimsync" ./cmd/scimsync
go build -o "$WORK/scimsync-load" ./cmd/scimsync-load
redis-cli -u "$REDIS_URL" ping >/dev/null 2>&1 || die "Redis at REDIS_URL does not answer"
[ -n "$OWN_REDIS" ] && redis-cli -u "$REDIS_URL" flushdb >/dev/null

# serve DATABASE_URL: starts scimsync and sets BASE and TOKEN.
serve() {
  local db=$1 port
  port=$(free_port)
  BASE=http://127.0.0.1:$port
  (
    cd "$WORK"
    export SCIMSYNC_HTTP_ADDR=127.0.0.1:$port SCIMSYNC_PUBLIC_URL=$BASE SCIMSYNC_ADMIN_TOKEN=$ADMIN_TOKEN
    export SCIMSYNC_DATA_DIR=$WORK DATABASE_URL=$db REDIS_URL SCIMSYNC_LOG_LEVEL=warn
    exec ./scimsync "$ROLE"
  ) >"$WORK/server.log" 2>&1 &
  SERVER_PID=$!
  wait_healthy
  scim_org
}

# CPU time, in clock ticks, of a process and of the bench database's
# Postgres backends: per request it is a figure that noisy neighbours on
# the machine distort less than throughput.
HZ=$(getconf CLK_TCK)
# load BACKEND MODE [flags]: one measured run of the load generator.
load() {
  local backend=$1 mode=$2 s0 p0 s1 p1 out
  shift 2
  s0=$(ticks "$SERVER_PID") p0=$(pg_ticks)
  # The load generator's own CPU (user and system seconds), since it shares
  # the machine's CPUs with the server.
  local TIMEFORMAT='%U %S'
  { time out=$("$WORK/scimsync-load" -url "$BASE/scim/v2" -token "$TOKEN" -mode "$mode" -c "$CONNS" -duration "${SECONDS_EACH}s" -json "$@"); } 2>"$WORK/load.time"
  s1=$(ticks "$SERVER_PID") p1=$(pg_ticks)
  python3 - "$backend" "$out" "$((s1 - s0))" "$(pg_delta "$p0" "$p1")" "$HZ" "$(tail -n 1 "$WORK/load.time")" <<'PY' | tee -a "$WORK/results.txt"
import json, sys
backend, out, server, pg, hz = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
client = sum(float(x) for x in sys.argv[6].split())
n = max(out["requests"], 1)
line = "%-8s %-6s %7.0f req/s  p50 %6.2f ms  p99 %6.2f ms  errors %d  (%d requests in %.1fs, %d connections; CPU per request: server %.0f us" % (
    backend, out["mode"], out["perSecond"], out["p50Ms"], out["p99Ms"], out["errors"], out["requests"], out["seconds"], out["concurrency"], server / hz / n * 1e6)
line += (", postgres %.0f us" % (pg / hz / n * 1e6)) if backend == "postgres" else ""
line += ", load generator %.0f us)" % (client / n * 1e6)
if out.get("firstError"):
    line += "\n         first error: " + out["firstError"]
print(line)
PY
}

for backend in $BACKENDS; do
  case $backend in
    sqlite) url=sqlite://$WORK/bench.db ;;
    postgres)
      fresh_db "$BENCH_DB"
      DB_CREATED=1
      url=$PG_BENCH_URL ;;
    *) die "unknown backend $backend" ;;
  esac
  step "$backend: scimsync $ROLE, $CONNS connections, ${SECONDS_EACH}s per run"
  serve "$url"
  load "$backend" create
  "$WORK/scimsync-load" -url "$BASE/scim/v2" -token "$TOKEN" -mode seed -run bench -users "$FILTER_USERS" >/dev/null
  load "$backend" filter -seeded -run bench -users "$FILTER_USERS"
  stop_server

  if [ "$backend" = postgres ]; then
    step "postgres: pgbench baseline, a two-insert transaction"
    psql "$PG_BENCH_URL" -q <<'SQL' >/dev/null
CREATE TABLE pgb_rows (id bigserial PRIMARY KEY, org_id text NOT NULL, payload text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE pgb_outbox (id bigserial PRIMARY KEY, payload text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
SQL
    cat >"$WORK/custom.sql" <<'SQL'
BEGIN;
INSERT INTO pgb_rows (org_id, payload) VALUES ('bench', repeat('x', 300));
INSERT INTO pgb_outbox (payload) VALUES ('{"orgId":"bench","directoryUserId":"x"}');
COMMIT;
SQL
    pgbench -n -c "$CONNS" -j 2 -T "$SECONDS_EACH" -f "$WORK/custom.sql" "$PG_BENCH_URL" 2>&1 |
      grep -E 'tps|latency average|number of failed' | sed 's/^/pgbench: /' | tee -a "$WORK/results.txt"
    drop_db "$BENCH_DB"
    DB_CREATED=
  fi
done

step "results"
cat "$WORK/results.txt"
