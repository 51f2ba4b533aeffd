#!/usr/bin/env bash
# Every figure of BENCHMARKS.md in one run, on SQLite and on Postgres, with
# the pgbench baseline of the same run so that each throughput is also a
# ratio of what the database itself sustains here:
#
#   1. SCIM push: POST /Users and GET /Users?filter=userName eq, with the
#      pgbench two-insert baseline (scripts/bench-scim.sh);
#   2. converge jobs/s end to end, outbox → relay → asynq → converge, with
#      the relay lag (BenchmarkPipeline; SQLite with the embedded Redis, then
#      Postgres with real Redis);
#   3. reconcile of 10k and 100k users from the Okta fake: time against the
#      bare listing, no-op time and peak RSS, and 100k again from a fake
#      that takes 20 ms per page (BenchmarkReconcile);
#   4. the Okta connector's listing alone (BenchmarkOktaList), and a full
#      against a delta reconcile of 100k users after 100 changed, from the
#      Okta and Entra fakes at 20 ms a request (BenchmarkDelta);
#   5. latency at a constant offered rate on Postgres and real Redis, with
#      pgbench at the same rate (scripts/bench-latency.sh);
#   6. provisioning end to end through `scimsync serve` on Postgres and real
#      Redis: 100k users from an Okta fake at 20 ms a page, to every member
#      pending_setup and every invite recorded, and the no-op run against
#      the bare listing (scripts/bench-e2e.sh).
#
# It prints what it runs on, each step's raw output, and a summary at the
# end; the whole log is kept in $BENCH_OUT (default: a new directory under
# /tmp). Run it on an otherwise idle machine: the load generator, scimsync,
# Postgres and Redis share its CPUs.
#
# Environment (defaults in brackets):
#   PG_ADMIN_URL   Postgres that holds the bench databases
#                  [postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable]
#   PG_TEST_URL    database whose schemas the Go benchmarks use
#                  [postgres://postgres@127.0.0.1:5432/test?sslmode=disable]
#   REDIS_URL      real Redis for the Postgres runs [redis://127.0.0.1:6379/0;
#                  the Go benchmarks lease a database number of their own]
#   PIPELINE_N     converges per pipeline run [10000]
#   RECONCILE      which reconcile sizes: all, or 10k [all]
#   SECONDS_EACH, CONNS, FILTER_USERS: passed on to bench-scim.sh (and
#                  SECONDS_EACH, FILTER_USERS to bench-latency.sh)
#   QUICK=1        a short smoke run of every step (5 s SCIM runs, 2,000
#                  converges, 10k reconcile only, 10k users end to end);
#                  its figures are not the ones to record
set -euo pipefail

ROOT=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
cd "$ROOT"

PG_ADMIN_URL=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
PG_TEST_URL=${PG_TEST_URL:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}
REDIS_BASE=${REDIS_URL:-redis://127.0.0.1:6379/0}
PIPELINE_N=${PIPELINE_N:-10000}
RECONCILE=${RECONCILE:-all}
E2E_USERS=100000
if [ "${QUICK:-}" = 1 ]; then
  export SECONDS_EACH=${SECONDS_EACH:-5}
  PIPELINE_N=2000
  RECONCILE=10k
  E2E_USERS=10000
fi
OUT=${BENCH_OUT:-$(mktemp -d "${TMPDIR:-/tmp}/scimsync-benchall.XXXXXX")}
mkdir -p "$OUT"
LOG=$OUT/bench.log
: >"$LOG"

step() { printf '\n==> %s\n' "$*" | tee -a "$LOG"; }
die() { echo "bench: $*" >&2; exit 1; }
run() { "$@" 2>&1 | tee -a "$LOG"; return "${PIPESTATUS[0]}"; }

pg_isready -q -d "$PG_ADMIN_URL" || die "Postgres does not answer at PG_ADMIN_URL"
redis-cli -u "$REDIS_BASE" ping >/dev/null 2>&1 || die "Redis does not answer at REDIS_URL"

step "machine"
{
  echo "date:      $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "commit:    $(git rev-parse --short HEAD)$(git diff --quiet || echo ' (with local changes)')"
  echo "cpu:       $(nproc) x $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
  echo "memory:    $(free -h | awk '/^Mem:/{print $2}')"
  echo "os:        $(. /etc/os-release && echo "$PRETTY_NAME")"
  echo "go:        $(go version | cut -d' ' -f3-)"
  echo "postgres:  $(psql "$PG_ADMIN_URL" -Atc 'SHOW server_version')"
  echo "redis:     $(redis-cli -u "$REDIS_BASE" info server | awk -F: '/^redis_version/{print $2}' | tr -d '\r')"
  echo "load:      $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min)"
} | tee -a "$LOG"

step "SCIM push on SQLite and Postgres, with the pgbench baseline"
REDIS_URL= run bash scripts/bench-scim.sh

gobench() { # ENV... -- go test args
  local envs=()
  while [ "$1" != -- ]; do envs+=("$1"); shift; done
  shift
  run env -u TEST_DATABASE_URL -u TEST_REDIS_URL "${envs[@]}" go test -run '^$' -count 1 "$@"
}

step "converge pipeline on SQLite, embedded Redis"
gobench -- -bench Pipeline -benchtime "${PIPELINE_N}x" ./jobs/
step "converge pipeline on Postgres, real Redis"
gobench TEST_DATABASE_URL="$PG_TEST_URL" TEST_REDIS_URL="$REDIS_BASE" -- -bench Pipeline -benchtime "${PIPELINE_N}x" ./jobs/

pattern=BenchmarkReconcile
[ "$RECONCILE" = 10k ] && pattern='BenchmarkReconcile/10k'
step "reconcile from the Okta fake on SQLite"
gobench -- -bench "$pattern" -benchtime 1x -timeout 30m ./reconciler/
step "reconcile from the Okta fake on Postgres"
gobench TEST_DATABASE_URL="$PG_TEST_URL" -- -bench "$pattern" -benchtime 1x -timeout 30m ./reconciler/

step "Okta connector listing"
listing=BenchmarkOktaList
[ "$RECONCILE" = 10k ] && listing=BenchmarkOktaList10k
gobench -- -bench "$listing" -benchtime 3x ./connectors/okta/

step "full against delta reconcile from the Okta and Entra fakes on SQLite"
gobench -- -bench BenchmarkDelta -benchtime 1x -timeout 30m ./reconciler/

step "latency at a constant offered rate, Postgres and real Redis"
REDIS_URL= BENCH_LATENCY_OUT="$OUT/latency.txt" run bash scripts/bench-latency.sh

step "provisioning end to end through the binary, Postgres and real Redis"
REDIS_URL= USERS=$E2E_USERS BENCH_E2E_OUT="$OUT/e2e" run bash scripts/bench-e2e.sh

step "summary"
python3 - "$LOG" <<'PY' | tee "$OUT/summary.txt"
import re, sys
log = open(sys.argv[1]).read()
m = re.search(r"pgbench: tps = ([0-9.]+)", log)
tps = float(m.group(1)) if m else None
print("pgbench two-insert baseline: %s tps" % ("%.0f" % tps if tps else "not measured"))
def ratio(v):
    return " (%.2f of pgbench)" % (v / tps) if tps else ""
seen = set()  # bench-scim.sh repeats its lines under "results"
for backend, mode, rps, p99 in re.findall(r"^(sqlite|postgres)\s+(create|filter)\s+([0-9.]+) req/s.*?p99\s+([0-9.]+) ms", log, re.M):
    if (backend, mode) in seen:
        continue
    seen.add((backend, mode))
    print("SCIM %-8s %-6s %8.0f req/s  p99 %6.2f ms%s" % (backend, mode, float(rps), float(p99), ratio(float(rps)) if backend == "postgres" else ""))
def metrics(line):
    return dict((u, float(v)) for v, u in re.findall(r"([0-9.e+-]+) ([A-Za-z][A-Za-z0-9/%-]*)", line))
for line in re.findall(r"^BenchmarkPipeline/\S+.*$", log, re.M):
    name = line.split()[0]
    m = metrics(line)
    lag = " relay-lag p99 %.2f s" % m["relay-lag-p99-s"] if "relay-lag-p99-s" in m else ""
    r = ratio(m.get("converges/s", 0)) if "postgres" in name else ""
    print("%-48s %7.0f converges/s%s%s" % (name, m.get("converges/s", 0), lag, r))
for section in re.split(r"^==> ", log, flags=re.M):
    backend = "postgres" if section.startswith("reconcile from the Okta fake on Postgres") else "sqlite"
    for line in re.findall(r"^BenchmarkReconcile/\S+.*$", section, re.M):
        m = metrics(line)
        print("%-30s %-8s list %.2f s  first %.2f s (%.1fx list)  no-op %.2f s (own %.2f s)  peak RSS %.0f MB" % (
            line.split()[0], backend, m.get("list-s", 0), m.get("first-s", 0), m.get("first/list", 0),
            m.get("noop-s", 0), m.get("noop-own-s", 0), m.get("peak-rss-MB", 0)))
for line in re.findall(r"^BenchmarkDelta/\S+.*$", log, re.M):
    m = metrics(line)
    print("%-30s full %.0f requests %.2f s  delta %.0f requests %.2f s" % (
        line.split()[0], m.get("full-requests", 0), m.get("full-s", 0), m.get("delta-requests", 0), m.get("delta-s", 0)))
for line in re.findall(r"^BenchmarkOktaList\S+.*$", log, re.M):
    m = metrics(line)
    print("%-30s %.2f s per listing  peak heap %.1f MB" % (line.split()[0], m.get("ns/op", 0) / 1e9, m.get("peak-inuse-MB", 0)))
PY
{ echo "latency at a constant offered rate:"; cat "$OUT/latency.txt"; } | tee -a "$OUT/summary.txt"
{ echo "provisioning end to end:"; sed '/^task runs/,$d' "$OUT/e2e/table.txt"; } | tee -a "$OUT/summary.txt"
echo "full log: $LOG"
