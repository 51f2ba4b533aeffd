#!/usr/bin/env bash
# Provisioning end to end through the binary: `scimsync serve` on a fresh
# Postgres database and real Redis, without SMTP (invite e-mails are
# recorded in the mail log, not sent), provisions USERS users from an Okta
# fake answering in PAGE_DELAY a page (scimsync-load -mode provision). It
# prints the bare listing of the fake, the first run (and its pull), when
# every member was pending_setup and at how many members/s after the run,
# when every invite was recorded, and a no-op full run once the queues
# drained, against the bare listing. With PROFILE=1 it also keeps 30 s CPU
# profiles of the server (from SCIMSYNC_DEBUG_ADDR) taken while members
# converge, the database pool's statistics, and the active statements of
# the database sampled twice a second (pg-activity.txt).
#
# Environment (defaults in brackets):
#   PG_ADMIN_URL   [postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable]
#   BENCH_DB       database created afresh, then dropped [scimsync_e2e]
#   REDIS_URL      [redis://127.0.0.1:6379/12; that default database is
#                  emptied before and after]
#   USERS          [100000]
#   PAGE_DELAY     the fake's response time per page of 200 users [20ms]
#   TIMEOUT        the longest wait for members and invites [15m]
#   SCIMSYNC_BIN   a scimsync binary to measure instead of building one
#   PROFILE=1      keep CPU profiles in BENCH_E2E_OUT (default: a new
#                  directory under /tmp)
BENCH_NAME=bench-e2e
. "$(dirname "$0")/bench-lib.sh"

BENCH_DB=${BENCH_DB:-scimsync_e2e}
OWN_REDIS=
[ -z "${REDIS_URL:-}" ] && OWN_REDIS=1
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/12}
USERS=${USERS:-100000}
PAGE_DELAY=${PAGE_DELAY:-20ms}
TIMEOUT=${TIMEOUT:-15m}
PG_BENCH_URL=$(bench_db_url "$BENCH_DB")

WORK=$(mktemp -d "${TMPDIR:-/tmp}/scimsync-e2e.XXXXXX")
OUT=${BENCH_E2E_OUT:-$WORK/out}
mkdir -p "$OUT"
PROF_PID= ACT_PID=
cleanup() {
  status=$?
  [ -z "$PROF_PID" ] || kill "$PROF_PID" 2>/dev/null || true
  [ -z "$ACT_PID" ] || kill "$ACT_PID" 2>/dev/null || true
  stop_server
  [ -z "$OWN_REDIS" ] || redis-cli -u "$REDIS_URL" flushdb >/dev/null 2>&1 || true
  drop_db "$BENCH_DB"
  [ "$status" -ne 0 ] && [ -f "$WORK/server.log" ] && tail -n 30 "$WORK/server.log" >&2
  [ -n "${BENCH_E2E_OUT:-}" ] || [ "${PROFILE:-}" = 1 ] || rm -rf "$WORK"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bench_build

step "serve on a fresh database"
fresh_db "$BENCH_DB"
[ -z "$OWN_REDIS" ] || redis-cli -u "$REDIS_URL" flushdb >/dev/null
port=$(free_port) dport=$(free_port)
BASE=http://127.0.0.1:$port DEBUG=http://127.0.0.1:$dport
(
  cd "$WORK"
  export SCIMSYNC_HTTP_ADDR=127.0.0.1:$port SCIMSYNC_PUBLIC_URL=$BASE SCIMSYNC_ADMIN_TOKEN=$ADMIN_TOKEN
  export SCIMSYNC_DEBUG_ADDR=127.0.0.1:$dport SCIMSYNC_DATA_DIR=$WORK DATABASE_URL=$PG_BENCH_URL REDIS_URL
  export SCIMSYNC_LOG_LEVEL=${SCIMSYNC_LOG_LEVEL:-info}
  unset SMTP_URL
  exec "$BIN" serve
) >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
wait_healthy

if [ "${PROFILE:-}" = 1 ]; then
  # Profiles while members converge: from 20 s in (a 20 ms fake's pull of
  # 100k takes about 12 s) for as long as the run lasts.
  (
    sleep 20
    for i in 1 2 3 4 5 6; do
      curl -fsS "$DEBUG/debug/pprof/profile?seconds=30" -o "$OUT/cpu-$i.pprof" 2>/dev/null || break
      curl -fsS "$DEBUG/debug/dbpool" -o "$OUT/dbpool-$i.json" 2>/dev/null || true
    done
  ) &
  PROF_PID=$!
  # What the database's sessions are doing, twice a second: the statement
  # and wait of each active one.
  (
    while sleep 0.5; do
      psql "$PG_ADMIN_URL" -AtF '|' -c "SELECT wait_event_type, wait_event, regexp_replace(left(query, 160), '\s+', ' ', 'g')
        FROM pg_stat_activity WHERE datname = '$BENCH_DB' AND state = 'active' AND pid <> pg_backend_pid()" 2>/dev/null || true
    done
  ) >"$OUT/pg-activity.txt" &
  ACT_PID=$!
fi

step "provision $USERS users from the Okta fake at $PAGE_DELAY a page"
load0=$(cut -d' ' -f1-3 /proc/loadavg)
"$WORK/scimsync-load" -url "$BASE" -mode provision -users "$USERS" -page-delay "$PAGE_DELAY" \
  -admin-token "$ADMIN_TOKEN" -db "$PG_BENCH_URL" -duration "$TIMEOUT" -json >"$WORK/result.json"
load1=$(cut -d' ' -f1-3 /proc/loadavg)
curl -fsS "$DEBUG/debug/dbpool" >"$OUT/dbpool.json" 2>/dev/null || true
curl -fsS "$BASE/metrics" 2>/dev/null | grep -E '^scimsync_(jobs_total|outbox_relayed_total)' >"$OUT/jobs.txt" || true

step "results"
{
  echo "date $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD)$(git diff --quiet || echo ' (with local changes)'), binary ${SCIMSYNC_BIN:-built}, load before $load0, after $load1"
  python3 - "$WORK/result.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print("users %d, fake at %s a page" % (r["users"], r["pageDelay"]))
print("bare listing        %8.2f s" % r["listS"])
print("first run           %8.2f s (pull %.2f s)" % (r["runS"], r["pullS"]))
print("all pending_setup   %8.2f s from the start: %.0f members/s after the run" % (r["pendingS"], r["membersPerSecondAfterRun"]))
print("all invites         %8.2f s from the start: %.2f s after the last member" % (r["invitesS"], r["invitesAfterPendingS"]))
print("no-op full run      %8.2f s: %.2fx the bare listing" % (r["noopS"], r["noopPerList"]))
PY
  echo "database pool at the end: $(cat "$OUT/dbpool.json" 2>/dev/null || echo '?')"
  echo "task runs by type and outcome:"
  sed 's/^/  /' "$OUT/jobs.txt"
} | tee "$OUT/table.txt"
[ "${PROFILE:-}" = 1 ] && echo "profiles and logs in $OUT" >&2 && cp "$WORK/server.log" "$OUT/"
exit 0
