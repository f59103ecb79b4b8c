#!/usr/bin/env python3
"""CI smoke check for `callwatch bench --quick --json` (benchmark issue).

Reads the JSON object on stdin and checks that every key the issue asks
for exists and is a positive number. It never checks a speed: CI
machines differ, and the figures belong in docs/performance.md.
"""
import json
import math
import sys

KEYS = [
    "decode_events_per_s",
    "apply_events_per_s", "apply_vs_decode",
    "tcp_durable_events_per_s", "tcp_vs_decode",
    "http_durable_events_per_s", "http_vs_decode",
    "webhook_events_per_s", "webhook_vs_http",
    "scrape_ms_500_agents", "scrape_ms_5000_agents", "scrape_series_5000_agents",
    "scrape_ingest_stall_ms", "snapshot_ingest_stall_ms",
    "snapshot_ingest_stall_thread_ms", "snapshot_stall_fork_vs_thread",
    "feed_p50_ms", "feed_p99_ms", "feed_clients",
    "bytes_per_open_task", "bytes_per_agent",
    "recovery_events_per_s", "recovery_vs_decode",
    "snapshot_build_ms", "scorecards_build_ms", "scorecards_vs_snapshot",
    "jetstream_events_per_s", "jetstream_vs_tcp",
    "jetstream_feed_p50_ms", "jetstream_feed_p99_ms",
]

def main() -> int:
    try:
        report = json.load(sys.stdin)
    except json.JSONDecodeError as e:
        print(f"bench output is not JSON: {e}", file=sys.stderr)
        return 1
    bad = []
    for k in KEYS:
        v = report.get(k)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
            bad.append(f"{k}={v!r}")
    if bad:
        print("bench smoke check failed: " + ", ".join(bad), file=sys.stderr)
        return 1
    print(f"bench smoke check: {len(KEYS)} keys present and positive")
    return 0

if __name__ == "__main__":
    sys.exit(main())
