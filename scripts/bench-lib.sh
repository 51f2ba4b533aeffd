# What the bench scripts share; sourced, not run. The script sets
# BENCH_NAME (its messages' prefix) first. On return the working directory
# is the repository's root, and PG_ADMIN_URL, ADMIN_TOKEN and SERVER_PID
# are set.
set -euo pipefail

ROOT=$(git -C "$(dirname "${BASH_SOURCE[0]}")" rev-parse --show-toplevel)
cd "$ROOT"

PG_ADMIN_URL=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
ADMIN_TOKEN=bench-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
SERVER_PID=

step() { printf '\n==> %s\n' "$*" >&2; }
die() { echo "$BENCH_NAME: $*" >&2; exit 1; }

# bench_db_url NAME: the URL of database NAME on PG_ADMIN_URL's server.
bench_db_url() {
  case "$1" in *[!a-z0-9_]*|"") die "BENCH_DB must be a plain lower-case name" ;; esac
  echo "$PG_ADMIN_URL" | sed -E "s#/[^/?]*(\\?|\$)#/$1\\1#"
}
drop_db() { psql "$PG_ADMIN_URL" -qc "DROP DATABASE IF EXISTS $1 WITH (FORCE)" >/dev/null 2>&1 || true; }
# fresh_db NAME: drops database NAME if it is there and creates it empty.
fresh_db() {
  drop_db "$1"
  psql "$PG_ADMIN_URL" -qc "CREATE DATABASE $1" >/dev/null
}

# json FIELD: one field of the JSON document on stdin.
json() { python3 -c 'import json,sys;print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

# free_port picks a free port below the ephemeral range, which a load
# generator's thousands of connections may take between the pick and the
# server's bind.
free_port() {
  python3 -c '
import random, socket
for _ in range(1000):
    p = random.randrange(20000, 32000)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
    except OSError:
        continue
    finally:
        s.close()
    print(p)
    break'
}

# wait_healthy: waits for $BASE/healthz of the server at SERVER_PID.
wait_healthy() {
  for _ in $(seq 1 150); do
    curl -fsS "$BASE/healthz" >/dev/null 2>&1 && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || die "the server exited during start"
    sleep 0.2
  done
  die "the server did not answer $BASE/healthz"
}

stop_server() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=
}

# admin METHOD PATH [BODY]: one admin API call to the server at BASE.
admin() {
  curl -fsS -X "$1" "$BASE/api/v1$2" -H "Authorization: Bearer $ADMIN_TOKEN" -H 'Content-Type: application/json' ${3:+--data "$3"}
}

# scim_org: makes an organization with SCIM on and sets TOKEN to a SCIM
# token of it.
scim_org() {
  local org
  org=$(admin POST /orgs '{"name":"bench"}' | json id)
  admin PATCH "/orgs/$org" '{"scimEnabled":true}' >/dev/null
  TOKEN=$(admin POST "/orgs/$org/scim-tokens" '{"description":"bench","ttlDays":1}' | json token)
}

# ticks PID...: CPU clock ticks (user and system) the processes have used;
# one that has ended counts 0.
ticks() {
  local t=0 p v
  for p in "$@"; do
    v=$(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)
    t=$((t + ${v:-0}))
  done
  echo "$t"
}

# bench_build: checks that Postgres and Redis answer, then builds
# scimsync-load, and scimsync unless SCIMSYNC_BIN names a binary, into
# WORK; sets BIN.
bench_build() {
  pg_isready -q -d "$PG_ADMIN_URL" || die "Postgres does not answer at PG_ADMIN_URL"
  redis-cli -u "$REDIS_URL" ping >/dev/null 2>&1 || die "Redis does not answer at REDIS_URL"
  step "build"
  BIN=${SCIMSYNC_BIN:-}
  if [ -z "$BIN" ]; then
    go build -o "$WORK/scimsync" ./cmd/scimsync
    BIN=$WORK/scimsync
  fi
  go build -o "$WORK/scimsync-load" ./cmd/scimsync-load
}

# pg_ticks prints "pid:ticks" of each Postgres backend of BENCH_DB; pg_delta OLD NEW sums what
# each backend used between the two (a new one all it used, one that ended
# meanwhile nothing: a sum of current totals would go down when a backend
# with much CPU ends).
pg_ticks() {
  local p
  for p in $(pgrep -f "postgres: .* $BENCH_DB " || true); do printf '%s:%s ' "$p" "$(ticks "$p")"; done
}
pg_delta() {
  python3 -c '
import sys
old = dict(x.split(":") for x in sys.argv[1].split())
print(sum(max(0, int(t) - int(old.get(p, 0))) for p, t in (x.split(":") for x in sys.argv[2].split())))' "$1" "$2"
}
