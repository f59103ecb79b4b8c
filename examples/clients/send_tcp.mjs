#!/usr/bin/env node
// Send NDJSON events to callwatch's TCP ingest, resending what was not
// acknowledged after a broken connection (docs/api.md, "TCP ingest").
// No dependencies. Usage: node send_tcp.mjs HOST:PORT FILE.ndjson
// (token in $CALLWATCH_TOKEN). Exit status as send_tcp.py: 0 all applied
// or duplicates, 1 some refused, 2 daemon not reached in the retry budget.
import net from "node:net";
import { readFileSync } from "node:fs";

const [addr, path] = process.argv.slice(2);
const token = process.env.CALLWATCH_TOKEN ?? "";
const retryForMs = Number(process.env.CALLWATCH_RETRY_FOR ?? "60") * 1000;
const lines = readFileSync(path, "utf8").split(/\r?\n/).filter((l) => l.trim());
const sep = addr.lastIndexOf(":");
const [host, port] = [addr.slice(0, sep), Number(addr.slice(sep + 1))];

// One connection: sends `batch`, calls back with (acked, refused, error).
function send(batch) {
  return new Promise((resolve) => {
    // Refusals are final only once acknowledged: `refused` holds those
    // up to the last ACK, `pending` those after it (resent on a cut).
    let refused = [], pending = [];
    let acked = 0, buf = "", authed = !token, ended = false;
    const sock = net.connect({ host, port });
    const finish = (err) => {
      if (ended) return;
      ended = true;
      sock.destroy();
      resolve({ acked, refused, err });
    };
    sock.setTimeout(30000, () => finish(new Error("timeout")));
    sock.on("error", finish);
    sock.on("close", () => finish(acked < batch.length ? new Error("closed by the daemon") : null));
    sock.on("connect", () => {
      if (token) sock.write(`AUTH ${token}\n`);
      else sock.write(batch.map((l) => l + "\n").join(""));
    });
    sock.on("data", (chunk) => {
      buf += chunk.toString("utf8");
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const text = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (!authed) {
          if (text !== "OK") {
            console.error(`authentication refused: ${text}`);
            process.exit(1);
          }
          authed = true;
          sock.write(batch.map((l) => l + "\n").join(""));
        } else if (text.startsWith("ACK ")) {
          acked = Number(text.slice(4));
          refused = refused.concat(pending);
          pending = [];
          if (acked >= batch.length) finish(null);
        } else if (text.startsWith("ERR ")) {
          // Not about one line (shutting down, storage): resend later.
          if (!/^\d+$/.test(text.slice(4).split(" ")[0])) finish(new Error(text));
          else pending.push(text);
        }
      }
    });
  });
}

let done = 0, delay = 100;
const refused = [];
const deadline = Date.now() + retryForMs;
while (done < lines.length) {
  const r = await send(lines.slice(done));
  done += r.acked;
  refused.push(...r.refused);
  if (r.err && done < lines.length) {
    if (Date.now() > deadline) {
      console.error(`giving up: ${r.err.message}`);
      process.exit(2);
    }
    console.error(`retrying in ${delay} ms: ${r.err.message}`);
    await new Promise((ok) => setTimeout(ok, delay));
    delay = Math.min(delay * 2, 5000);
  }
}
for (const r of refused) console.error(r);
process.exit(refused.length ? 1 : 0);
