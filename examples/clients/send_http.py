#!/usr/bin/env python3
"""Send NDJSON events to callwatch's `POST /api/v1/events` in batches,
resending a batch that got no answer or a 503 (docs/api.md).

Standard library only. Usage:
    send_http.py http://HOST:PORT FILE.ndjson   (token in $CALLWATCH_TOKEN)
Exit status: 0 when every event was applied or a duplicate, 1 when the
daemon refused some (printed on stderr), 2 when it could not be reached
within the retry budget.
"""
import json
import os
import sys
import time
import urllib.error
import urllib.request

BATCH = 1000
RETRY_FOR_S = float(os.environ.get("CALLWATCH_RETRY_FOR", "60"))


def post(url, body, token):
    req = urllib.request.Request(url + "/api/v1/events", data=body, method="POST")
    req.add_header("Content-Type", "application/x-ndjson")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def main():
    url, path = sys.argv[1].rstrip("/"), sys.argv[2]
    token = os.environ.get("CALLWATCH_TOKEN", "")
    with open(path, "rb") as f:
        lines = [l.rstrip(b"\r\n") for l in f if l.strip()]
    refused = 0
    deadline = time.monotonic() + RETRY_FOR_S
    for start in range(0, len(lines), BATCH):
        body = b"\n".join(lines[start:start + BATCH])
        delay = 0.1
        while True:
            try:
                status, reply = post(url, body, token)
            except OSError as e:
                status, reply = None, {"error": str(e)}
            if status in (200, 422):
                for r in reply.get("rejected", []):
                    refused += 1
                    print(f"line {start + r['index'] + 1}: {r['reason']}: {r['error']}",
                          file=sys.stderr)
                break
            if status is not None and status not in (503, 429):
                # 400, 401, 409, 413: sending again would not help.
                print(f"refused with {status}: {reply}", file=sys.stderr)
                return 1
            # No answer or 503: the whole batch again (duplicates are
            # recognised by event id).
            if time.monotonic() > deadline:
                print(f"giving up: {reply}", file=sys.stderr)
                return 2
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
    return 1 if refused else 0


if __name__ == "__main__":
    sys.exit(main())
