#!/usr/bin/env bash
# Latency at a constant offered rate (an open model: arrivals do not wait
# for answers, so a stall shows as latency instead of a lower rate), on a
# fresh Postgres database and real Redis, with pgbench at the same rate in
# the same run. Rows:
#   api    health  GET /healthz                        3,000/s
#   api    create  POST /Users                           500/s and 1,000/s
#   api    filter  GET /Users?filter=userName eq "…"   1,000/s and 3,000/s
#   serve  create  POST /Users (the worker converging)   500/s
#   pgbench        INSERT of a user-like row           1,000/s
# Each row also reports what would explain a tail, measured over the row:
# garbage collections and their longest stop-the-world pause (from
# GODEBUG=gctrace=1), waits for a database connection (the pool's
# statistics, from SCIMSYNC_DEBUG_ADDR), and Postgres lock waits longer
# than 20 ms (log_lock_waits on the bench database, read from the server
# log at PG_LOG when it is readable); and how many SCIM token lookups
# reached the database (scans of scim_tokens), which the token cache keeps
# near one per TTL. And where the CPU went: the whole machine's busy share
# over the row (/proc/stat), and the CPU milliseconds per request of
# scimsync, of the bench database's Postgres backends and of the load tool. A
# row whose requests need more CPU than the machine has cannot meet a
# latency target whatever the code does; the busy share shows it.
#
# Environment (defaults in brackets):
#   PG_ADMIN_URL   [postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable]
#   BENCH_DB       database created afresh for each server, then dropped
#                  [scimsync_latency]
#   REDIS_URL      [redis://127.0.0.1:6379/13; that default database is
#                  emptied before each server and at the end, since the api
#                  role leaves its queued converge tasks there]
#   SECONDS_EACH   duration of each row [15]
#   FILTER_USERS   users created before the filter row [2000]
#   SCIMSYNC_BIN   a scimsync binary to measure instead of building one
#   SCIMSYNC_DB_MAX_CONNS  the server's pool size, as it reads it
#   PG_LOG         Postgres server log [/var/log/postgresql/postgresql-*-main.log]
#   ROWS           which groups of rows to run, of api, serve and pgbench
#                  [api serve pgbench]
BENCH_NAME=bench-latency
. "$(dirname "$0")/bench-lib.sh"

BENCH_DB=${BENCH_DB:-scimsync_latency}
OWN_REDIS=
[ -z "${REDIS_URL:-}" ] && OWN_REDIS=1
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/13}
SECONDS_EACH=${SECONDS_EACH:-15}
FILTER_USERS=${FILTER_USERS:-2000}
PG_LOG=${PG_LOG:-$(ls /var/log/postgresql/postgresql-*-main.log 2>/dev/null | head -n 1 || true)}
PG_BENCH_URL=$(bench_db_url "$BENCH_DB")
ROWS=${ROWS:-api serve pgbench}
for r in $ROWS; do
  case $r in api|serve|pgbench) ;; *) die "ROWS: unknown group $r (api, serve or pgbench)" ;; esac
done
# wants GROUP: whether ROWS names GROUP.
wants() { case " $ROWS " in *" $1 "*) return 0 ;; esac; return 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/scimsync-latency.XXXXXX")
bench_fresh_db() {
  fresh_db "$BENCH_DB"
  # Lock waits past 20 ms are logged, for this database only.
  psql "$PG_ADMIN_URL" -qc "ALTER DATABASE $BENCH_DB SET log_lock_waits = on" -c "ALTER DATABASE $BENCH_DB SET deadlock_timeout = '20ms'" >/dev/null
  [ -z "$OWN_REDIS" ] || redis-cli -u "$REDIS_URL" flushdb >/dev/null
}
cleanup() {
  status=$?
  stop_server
  [ -z "$OWN_REDIS" ] || redis-cli -u "$REDIS_URL" flushdb >/dev/null 2>&1 || true
  drop_db "$BENCH_DB"
  [ "$status" -ne 0 ] && [ -f "$WORK/server.log" ] && tail -n 30 "$WORK/server.log" >&2
  rm -rf "$WORK"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bench_build

# serve ROLE: starts scimsync on a fresh database and sets BASE, DEBUG and
# TOKEN.
serve() {
  local role=$1 port dport
  bench_fresh_db
  port=$(free_port) dport=$(free_port)
  BASE=http://127.0.0.1:$port DEBUG=http://127.0.0.1:$dport
  (
    cd "$WORK"
    export SCIMSYNC_HTTP_ADDR=127.0.0.1:$port SCIMSYNC_PUBLIC_URL=$BASE SCIMSYNC_ADMIN_TOKEN=$ADMIN_TOKEN
    export SCIMSYNC_DEBUG_ADDR=127.0.0.1:$dport SCIMSYNC_DATA_DIR=$WORK DATABASE_URL=$PG_BENCH_URL REDIS_URL
    export SCIMSYNC_LOG_LEVEL=warn GODEBUG=gctrace=1
    exec "$BIN" "$role"
  ) >"$WORK/server.log" 2>&1 &
  SERVER_PID=$!
  wait_healthy
  scim_org
  # A warm-up, not measured: the pool's connections, their prepared
  # statements and the first pages of the tables, which a running server
  # has, would otherwise fall on the first row.
  "$WORK/scimsync-load" -url "$BASE/scim/v2" -token "$TOKEN" -mode create -rate 200/s -duration 3s -run warm >/dev/null
}

pool() { curl -fsS "$DEBUG/debug/dbpool" 2>/dev/null || echo '{}'; }
lines() { wc -l <"$1" 2>/dev/null || echo 0; }
pglog_lines() { if [ -r "$PG_LOG" ]; then lines "$PG_LOG"; else echo -1; fi; }
# token_scans counts lookups of scim_tokens; Postgres publishes its table
# statistics within a second.
token_scans() {
  sleep 1
  psql "$PG_BENCH_URL" -Atc "SELECT coalesce(sum(coalesce(idx_scan, 0) + coalesce(seq_scan, 0)), 0) FROM pg_stat_user_tables WHERE relname = 'scim_tokens'"
}

# cpu_now: the machine's busy and total ticks, then scimsync's.
cpu_now() {
  echo "$(awk '/^cpu /{b=$2+$3+$4+$7+$8+$9; print b, b+$5+$6}' /proc/stat) $(ticks "$SERVER_PID")"
}

# row NAME ROLE MODE RATE [flags]: one measured row, appended to rows.jsonl.
row() {
  local name=$1 role=$2 mode=$3 rate=$4 out pool0 pool1 gc0 gc1 pg0 pg1 tok0 tok1 cpu0 cpu1 pgc0 pgc1
  shift 4
  tok0=$(token_scans)
  pool0=$(pool) gc0=$(lines "$WORK/server.log") pg0=$(pglog_lines)
  cpu0=$(cpu_now) pgc0=$(pg_ticks)
  out=$("$WORK/scimsync-load" -url "$BASE/scim/v2" -token "$TOKEN" -mode "$mode" -rate "$rate" -duration "${SECONDS_EACH}s" -json "$@")
  cpu1=$(cpu_now) pgc1=$(pg_ticks)
  pool1=$(pool) gc1=$(lines "$WORK/server.log") pg1=$(pglog_lines)
  tok1=$(token_scans)
  python3 - "$name" "$role" "$out" "$pool0" "$pool1" "$WORK/server.log" "$gc0" "$gc1" "$PG_LOG" "$pg0" "$pg1" "$BENCH_DB" "$((tok1 - tok0))" "$cpu0" "$cpu1" "$(getconf CLK_TCK)" "$(pg_delta "$pgc0" "$pgc1")" <<'PY' >>"$WORK/rows.jsonl"
import json, re, sys
name, role, out, p0, p1, slog, gc0, gc1, pglog, pg0, pg1, db, tok, cpu0, cpu1, hz, pgcpu = sys.argv[1:]
c0, c1 = [int(x) for x in cpu0.split()], [int(x) for x in cpu1.split()]
d = [b - a for a, b in zip(c0, c1)] + [int(pgcpu)]
out, p0, p1 = json.loads(out), json.loads(p0), json.loads(p1)
gcs = open(slog, errors="replace").read().splitlines()[int(gc0):int(gc1)]
pauses = []
for l in gcs:
    m = re.match(r"gc \d+ @\S+ \S+: ([0-9.]+)\+[0-9.]+\+([0-9.]+) ms clock", l)
    if m:
        pauses.append(max(float(m.group(1)), float(m.group(2))))
row = dict(name=name, role=role, **out, gcs=len(pauses), gcMaxStwMs=max(pauses, default=0), tokenLookups=int(tok))
row["machineBusy"] = d[0] / d[1] if d[1] else 0
if out["requests"]:
    per = 1000 / float(hz) / out["requests"]
    row["serverCpuMs"], row["postgresCpuMs"] = d[2] * per, d[3] * per
if "waitCount" in p0 and "waitCount" in p1:
    row["poolWaits"] = p1["waitCount"] - p0["waitCount"]
    row["poolWaitMs"] = (p1["waitSeconds"] - p0["waitSeconds"]) * 1000
if int(pg0) >= 0:
    lg = open(pglog, errors="replace").read().splitlines()[int(pg0):int(pg1)]
    row["lockWaits"] = sum(1 for l in lg if "still waiting for" in l and ("@" + db + " ") in l)
print(json.dumps(row))
PY
  tail -n 1 "$WORK/rows.jsonl" >&2
}

# /healthz comes first, on a server not yet busy with what an overloaded
# row left behind.
if wants api; then
step "api role: health, create and filter"
serve api
row "GET /healthz" api health 3000/s
row "POST /Users" api create 500/s
row "POST /Users" api create 1000/s
"$WORK/scimsync-load" -url "$BASE/scim/v2" -token "$TOKEN" -mode seed -run lat -users "$FILTER_USERS" >/dev/null
row "GET /Users?filter" api filter 1000/s -seeded -run lat -users "$FILTER_USERS"
row "GET /Users?filter" api filter 3000/s -seeded -run lat -users "$FILTER_USERS"
stop_server
fi

if wants serve; then
step "serve role: create"
serve serve
row "POST /Users" serve create 500/s
stop_server
fi

if wants pgbench; then
step "pgbench: INSERT of a user row at 1,000/s"
bench_fresh_db
psql "$PG_BENCH_URL" -q <<'SQL' >/dev/null
CREATE TABLE pgb_users (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(), org_id text NOT NULL, user_name text NOT NULL,
  external_id text, email text, given_name text, family_name text, active boolean NOT NULL,
  attributes jsonb NOT NULL, version bigint NOT NULL DEFAULT 1,
  created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (org_id, user_name));
SQL
cat >"$WORK/user.sql" <<'SQL'
\set n random(1, 1000000000000)
INSERT INTO pgb_users (org_id, user_name, external_id, email, given_name, family_name, active, attributes)
VALUES ('bench', 'load-' || :n || '@example.com', 'ext-' || :n, 'load-' || :n || '@example.com', 'Load', 'Test', true,
        '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"name":{"givenName":"Load","familyName":"Test"}}');
SQL
cpu0=$(cpu_now)
(cd "$WORK" && pgbench -n -c 8 -j 2 -R 1000 -T "$SECONDS_EACH" -l --log-prefix=pgb -f user.sql "$PG_BENCH_URL" >pgbench.out 2>&1) ||
  { cat "$WORK/pgbench.out" >&2; die "pgbench failed"; }
cpu1=$(cpu_now)
python3 - "$WORK" "$SECONDS_EACH" "$cpu0" "$cpu1" <<'PY' >>"$WORK/rows.jsonl"
import glob, json, re, sys
work, secs = sys.argv[1], float(sys.argv[2])
c0, c1 = [int(x) for x in sys.argv[3].split()], [int(x) for x in sys.argv[4].split()]
lat = sorted(int(l.split()[2]) for f in glob.glob(work + "/pgb.*") for l in open(f))
q = lambda p: lat[min(len(lat) - 1, max(0, int(p * len(lat) + 0.5) - 1))] / 1000 if lat else 0
tps = re.search(r"tps = ([0-9.]+)", open(work + "/pgbench.out").read())
print(json.dumps(dict(name="pgbench INSERT user", role="-", mode="pgbench", rate="1000/s", requests=len(lat), success=1.0,
    throughput=float(tps.group(1)) if tps else len(lat) / secs, p50Ms=q(.5), p90Ms=q(.9), p99Ms=q(.99), maxMs=q(1),
    machineBusy=(c1[0] - c0[0]) / max(c1[1] - c0[1], 1))))
PY
tail -n 1 "$WORK/rows.jsonl" >&2
fi

step "results"
{
  echo "date $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD)$(git diff --quiet || echo ' (with local changes)'), binary ${SCIMSYNC_BIN:-built}, load $(cut -d' ' -f1-3 /proc/loadavg)"
  python3 - "$WORK/rows.jsonl" <<'PY'
import json, sys
print("%-22s %-5s %8s %8s %8s %8s %9s %8s %10s  %-5s %-20s %-14s %-16s %-10s %s" % (
    "row", "role", "rate", "p50 ms", "p90 ms", "p99 ms", "max ms", "success", "throughput",
    "busy", "cpu ms/req srv/pg/load", "GCs/max STW", "pool waits", "lock waits", "token lookups"))
for l in open(sys.argv[1]):
    r = json.loads(l)
    gc = "%d/%.2f ms" % (r["gcs"], r["gcMaxStwMs"]) if "gcs" in r else "-"
    pw = "%d/%.0f ms" % (r["poolWaits"], r["poolWaitMs"]) if "poolWaits" in r else "-"
    busy = "%.0f%%" % (100 * r["machineBusy"]) if "machineBusy" in r else "-"
    cpu = "%.2f/%.2f/%.2f" % (r.get("serverCpuMs", 0), r.get("postgresCpuMs", 0), r.get("loadCpuMsPerRequest", 0)) if "serverCpuMs" in r else "-"
    print("%-22s %-5s %8s %8.2f %8.2f %8.2f %9.2f %8.4f %8.0f/s  %-5s %-20s %-14s %-16s %-10s %s" % (
        r["name"], r["role"], r["rate"], r["p50Ms"], r["p90Ms"], r["p99Ms"], r["maxMs"], r["success"], r["throughput"],
        busy, cpu, gc, pw, r.get("lockWaits", "-"), r.get("tokenLookups", "-")))
PY
} | tee "$WORK/table.txt"
[ -n "${BENCH_LATENCY_OUT:-}" ] && cp "$WORK/table.txt" "$BENCH_LATENCY_OUT"
exit 0
