#!/usr/bin/env node
// Send NDJSON events to callwatch's POST /api/v1/events in batches,
// resending a batch that got no answer or a 503 (docs/api.md).
// No dependencies (Node 18+: fetch). Usage:
//   node send_http.mjs http://HOST:PORT FILE.ndjson   (token in $CALLWATCH_TOKEN)
// Exit status as send_http.py.
import { readFileSync } from "node:fs";

const [url, path] = process.argv.slice(2);
const token = process.env.CALLWATCH_TOKEN ?? "";
const retryForMs = Number(process.env.CALLWATCH_RETRY_FOR ?? "60") * 1000;
const lines = readFileSync(path, "utf8").split(/\r?\n/).filter((l) => l.trim());
const BATCH = 1000;
const deadline = Date.now() + retryForMs;
let refused = 0;

for (let start = 0; start < lines.length; start += BATCH) {
  const body = lines.slice(start, start + BATCH).join("\n");
  let delay = 100;
  for (;;) {
    let status = null, reply = {};
    try {
      const headers = { "Content-Type": "application/x-ndjson" };
      if (token) headers.Authorization = `Bearer ${token}`;
      const r = await fetch(`${url.replace(/\/$/, "")}/api/v1/events`, { method: "POST", headers, body });
      status = r.status;
      reply = await r.json().catch(() => ({}));
    } catch (e) {
      reply = { error: String(e) };
    }
    if (status === 200 || status === 422) {
      for (const r of reply.rejected ?? []) {
        refused++;
        console.error(`line ${start + r.index + 1}: ${r.reason}: ${r.error}`);
      }
      break;
    }
    if (status !== null && status !== 503 && status !== 429) {
      console.error(`refused with ${status}: ${JSON.stringify(reply)}`);
      process.exit(1);
    }
    // No answer or 503: the whole batch again (duplicates are recognised).
    if (Date.now() > deadline) {
      console.error(`giving up: ${JSON.stringify(reply)}`);
      process.exit(2);
    }
    await new Promise((ok) => setTimeout(ok, delay));
    delay = Math.min(delay * 2, 5000);
  }
}
process.exit(refused ? 1 : 0);
