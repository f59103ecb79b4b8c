#!/bin/sh
# Send an NDJSON file (up to server.max_events_per_request events) to
# callwatch with curl, retrying while the daemon is unreachable or answers
# 503: the whole body again, duplicates are recognised by event id.
# Usage: send_http.sh http://HOST:PORT FILE.ndjson   (token in $CALLWATCH_TOKEN)
# Exit status: 0 all applied or duplicates, 1 some refused (the reply is
# printed), 2 not reached.
set -eu
url=${1%/}
file=$2
reply=$(curl --silent --show-error --retry 8 --retry-connrefused --retry-all-errors \
  --retry-max-time "${CALLWATCH_RETRY_FOR:-60}" \
  -H "Content-Type: application/x-ndjson" \
  ${CALLWATCH_TOKEN:+-H "Authorization: Bearer $CALLWATCH_TOKEN"} \
  --data-binary "@$file" --write-out '\n%{http_code}' "$url/api/v1/events") || exit 2
code=$(printf '%s\n' "$reply" | tail -n 1)
body=$(printf '%s\n' "$reply" | sed '$d')
case "$code" in
  200) exit 0 ;;
  *) printf '%s %s\n' "$code" "$body" >&2; exit 1 ;;
esac
