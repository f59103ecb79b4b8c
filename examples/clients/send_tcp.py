#!/usr/bin/env python3
"""Send NDJSON events to callwatch's TCP ingest, resending what was not
acknowledged after a broken connection (docs/api.md, "TCP ingest").

Standard library only. Usage:
    send_tcp.py HOST:PORT FILE.ndjson   (token in $CALLWATCH_TOKEN)
Exit status: 0 when every event was applied or a duplicate, 1 when the
daemon refused some (printed on stderr), 2 when it could not be reached
within the retry budget.
"""
import os
import socket
import sys
import time

RETRY_FOR_S = float(os.environ.get("CALLWATCH_RETRY_FOR", "60"))


def send(addr, lines, token, progress):
    """Sends `lines` on one connection; `progress["acked"]` follows the
    ACKs as they come, so a broken connection keeps what was confirmed."""
    host, port = addr.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=30)
    reader = sock.makefile("rb")
    refused = []
    try:
        if token:
            sock.sendall(b"AUTH " + token.encode() + b"\n")
            answer = reader.readline().decode().strip()
            if answer != "OK":
                raise SystemExit(f"authentication refused: {answer}")
        sock.sendall(b"".join(l + b"\n" for l in lines))
        acked = 0
        while acked < len(lines):
            answer = reader.readline()
            if not answer:
                raise ConnectionError("closed by the daemon")
            text = answer.decode().strip()
            if text.startswith("ACK "):
                acked = int(text[4:])
                progress["acked"] = acked
                progress["refused"] = list(refused)
            elif text.startswith("ERR "):
                head = text[4:].split(" ", 1)[0]
                if not head.isdigit():
                    # Not about one line (shutting down, storage): the
                    # connection ends; resend what was not acknowledged.
                    raise ConnectionError(text)
                refused.append(text)
        progress["refused"] = refused
    finally:
        sock.close()


def main():
    addr, path = sys.argv[1], sys.argv[2]
    token = os.environ.get("CALLWATCH_TOKEN", "")
    with open(path, "rb") as f:
        lines = [l.rstrip(b"\r\n") for l in f if l.strip()]
    done, refused, delay = 0, [], 0.1
    deadline = time.monotonic() + RETRY_FOR_S
    while done < len(lines):
        progress = {"acked": 0, "refused": []}
        try:
            send(addr, lines[done:], token, progress)
            done += progress["acked"]
            refused += progress["refused"]
        except (OSError, ConnectionError) as e:
            done += progress["acked"]
            refused += progress["refused"]
            # Lines after the last ACK are sent again: the daemon answers
            # those it already applied as duplicates.
            if time.monotonic() > deadline:
                print(f"giving up: {e}", file=sys.stderr)
                return 2
            print(f"retrying in {delay:.1f} s: {e}", file=sys.stderr)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
            # A new connection numbers its lines from 1 again.
            continue
    for r in refused:
        print(r, file=sys.stderr)
    return 1 if refused else 0


if __name__ == "__main__":
    sys.exit(main())
