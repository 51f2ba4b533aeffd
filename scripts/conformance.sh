#!/usr/bin/env bash
# SCIM conformance: builds scimsync, serves it on a free loopback port and
# runs the third-party Postman suites against /scim/v2 with newman.
#
#   Okta's SCIM 2.0 SPEC test   every assertion must pass (else exit 1)
#   Microsoft's SCIMReference   reported per request; only failures outside
#   collection                  the known non-RFC steps fail the script
#
# Environment:
#   DATABASE_URL, REDIS_URL  used by the server when set (default: a temporary
#                            SQLite database and the embedded Redis)
#   SCIMSYNC_ADMIN_TOKEN     admin token to start the server with (default:
#                            a random one)
#   TOOLS                    where newman is installed (default:
#                            ${XDG_CACHE_HOME:-$HOME/.cache}/scimsync-tools)
#   SHARED                   the shared/ directory with conformance/ (default:
#                            beside the repository, else /work/shared)
#   CONFORMANCE_OUT          where newman's JSON reports go (default: a
#                            temporary directory, printed at the end)
set -euo pipefail

ROOT=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
cd "$ROOT"

SHARED=${SHARED:-$ROOT/../shared}
[ -d "$SHARED/conformance" ] || SHARED=/work/shared
THIRD=$SHARED/conformance/third_party
[ -d "$THIRD" ] || { echo "conformance data not found (looked in $ROOT/../shared and /work/shared)" >&2; exit 1; }

TOOLS=${TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/scimsync-tools}
NEWMAN_VERSION=6.2.2
NEWMAN=$TOOLS/node_modules/.bin/newman

step() { printf '\n==> %s\n' "$*"; }
die() { echo "conformance: $*" >&2; exit 1; }

command -v node >/dev/null || die "node is required (apt-get install nodejs npm)"
if [ ! -x "$NEWMAN" ] || [ "$("$NEWMAN" --version 2>/dev/null)" != "$NEWMAN_VERSION" ]; then
  step "install newman $NEWMAN_VERSION into $TOOLS"
  mkdir -p "$TOOLS"
  npm install --no-save --no-audit --no-fund --prefix "$TOOLS" "newman@$NEWMAN_VERSION" >/dev/null
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/scimsync-conformance.XXXXXX")
OUT=${CONFORMANCE_OUT:-$WORK/reports}
mkdir -p "$OUT"
SERVER_PID=
cleanup() {
  status=$?
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [ "$status" -ne 0 ] && [ -f "$WORK/server.log" ]; then
    echo "--- last lines of the server log ---" >&2
    tail -n 40 "$WORK/server.log" >&2 || true
  fi
  # Keep the reports when they live in the temporary directory and failed.
  if [ "$status" -eq 0 ] || [ -n "${CONFORMANCE_OUT:-}" ]; then
    rm -rf "$WORK"
  else
    echo "reports and server log kept in $WORK" >&2
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step "build"
go build -o "$WORK/scimsync" ./cmd/scimsync

# A free loopback port: bind port 0 and release it.
PORT=$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
BASE=http://127.0.0.1:$PORT
ADMIN_TOKEN=${SCIMSYNC_ADMIN_TOKEN:-conformance-$(node -e 'console.log(require("crypto").randomBytes(16).toString("hex"))')}

db_desc="temporary SQLite"; [ -n "${DATABASE_URL:-}" ] && db_desc="DATABASE_URL"
redis_desc=embedded; [ -n "${REDIS_URL:-}" ] && redis_desc="REDIS_URL"
step "serve on $BASE (database: $db_desc, redis: $redis_desc)"
(
  cd "$WORK"
  export SCIMSYNC_HTTP_ADDR=127.0.0.1:$PORT SCIMSYNC_PUBLIC_URL=$BASE SCIMSYNC_ADMIN_TOKEN=$ADMIN_TOKEN
  export SCIMSYNC_DATA_DIR=$WORK DATABASE_URL=${DATABASE_URL:-sqlite://$WORK/scimsync.db}
  [ -n "${REDIS_URL:-}" ] && export REDIS_URL
  exec ./scimsync serve
) >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 150); do
  curl -fsS "$BASE/healthz" >/dev/null 2>&1 && break
  kill -0 "$SERVER_PID" 2>/dev/null || die "the server exited during start"
  sleep 0.2
done
curl -fsS "$BASE/healthz" >/dev/null || die "the server did not become healthy"

# json FIELD: read one field of the JSON document on stdin.
json() { node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const v=JSON.parse(s)[process.argv[1]];if(v===undefined)process.exit(1);console.log(v)})' "$1"; }
admin() {
  local method=$1 path=$2 body=${3:-}
  curl -fsS -X "$method" "$BASE/api/v1$path" -H "Authorization: Bearer $ADMIN_TOKEN" \
    -H 'Content-Type: application/json' ${body:+--data "$body"}
}
# tenant NAME: creates an organization with SCIM on; prints its SCIM token.
tenant() {
  local org
  org=$(admin POST /orgs "{\"name\":\"$1\"}" | json id)
  admin PATCH "/orgs/$org" '{"scimEnabled":true}' >/dev/null
  admin POST "/orgs/$org/scim-tokens" "{\"description\":\"$1\",\"ttlDays\":1}" | json token
}

step "organizations and tokens through the admin API"
OKTA_TOKEN=$(tenant "conformance-okta-$PORT")
MS_TOKEN=$(tenant "conformance-microsoft-$PORT")

# Okta's first step reads Resources[0] of the user list and wants a name,
# an e-mail and active on it.
curl -fsS -X POST "$BASE/scim/v2/Users" -H "Authorization: Bearer $OKTA_TOKEN" -H 'Content-Type: application/scim+json' \
  --data '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"seed.user@example.com","name":{"givenName":"Seed","familyName":"User"},"emails":[{"value":"seed.user@example.com","type":"work","primary":true}],"active":true}' >/dev/null

step "Okta SCIM 2.0 SPEC test"
okta_status=0
"$NEWMAN" run "$THIRD/okta/Okta-SCIM-20-SPEC-Test.postman_collection.json" \
  --env-var "SCIMBaseURL=$BASE/scim/v2" --env-var "auth=Bearer $OKTA_TOKEN" \
  --reporters cli,json --reporter-json-export "$OUT/okta.json" --color off --disable-unicode || okta_status=$?

step "Microsoft SCIMReferenceCode collection (on an empty organization)"
# Its bodies carry JMeter's "${__UUID}" as externalId, which Postman sends
# literally, so every user would share one externalId and all but the first
# meet the contract's 409. A copy asks Postman for a fresh GUID instead
# ({{$guid}}), as the authors meant; nothing else is changed.
node -e 'const fs=require("fs");const [src,dst]=process.argv.slice(1);fs.writeFileSync(dst,fs.readFileSync(src,"utf8").split("${__UUID}").join("{{$guid}}"))' \
  "$THIRD/microsoft/PostmanCollection.json" "$WORK/microsoft.postman_collection.json"
"$NEWMAN" run "$WORK/microsoft.postman_collection.json" \
  --env-var Protocol=http --env-var Server=127.0.0.1 --env-var "Port=:$PORT" --env-var Api=scim/v2 --env-var "token=$MS_TOKEN" \
  --folder "Endpoint tests" --folder "User tests" --folder "Group tests" --folder "ComplexAttribute tests" \
  --folder "User tests with garbage" --folder "Group tests with garbage" --folder "Teardown garbage" \
  --reporters json --reporter-json-export "$OUT/microsoft.json" >/dev/null 2>&1 || true

step "summary"
summary_status=0
node "$ROOT/scripts/newman-summary.js" "$OUT/okta.json" "$OUT/microsoft.json" || summary_status=$?
echo "reports: $OUT"
if [ "$okta_status" -ne 0 ]; then
  die "the Okta SPEC test failed"
fi
exit "$summary_status"
