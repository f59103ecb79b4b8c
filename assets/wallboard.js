// callwatch wallboard: renders the /ws feed (protocol 1, docs/feed.md).
// Runs for weeks on a TV: one websocket, one 1 s timer, DOM updated in
// place; no growing arrays, no listeners added per message.
(function () {
  "use strict";
  var params = new URLSearchParams(location.search);
  var board = { queues: {}, teams: {}, agents: {}, backlog: {}, overdue: {} };
  var offset = 0; // server now - local now, ms
  var lastSeq = 0;
  var ws = null;
  var backoff = 1000;
  var $ = function (id) { return document.getElementById(id); };

  function feedUrl() {
    var q = new URLSearchParams();
    ["queue", "queues", "team", "teams", "site", "sites", "kind", "kinds", "token"].forEach(function (k) {
      if (params.get(k)) q.set(k, params.get(k));
    });
    var proto = location.protocol === "https:" ? "wss://" : "ws://";
    return proto + location.host + "/ws?" + q.toString();
  }

  function now() { return Date.now() + offset; }

  function duration(ms) {
    var s = Math.max(0, Math.floor(ms / 1000));
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    if (h > 0) return h + "h " + (m < 10 ? "0" : "") + m + "m";
    return m + ":" + (r < 10 ? "0" : "") + r;
  }

  function pct(v) { return v === null || v === undefined ? "–" : Math.round(v * 100) + " %"; }
  function secs(v) { return v === null || v === undefined ? "–" : duration(v * 1000); }
  function money(v) { return Math.round(v).toLocaleString("de-DE") + " €"; }
  function esc(s) { return String(s).replace(/[&<>"']/g, function (c) { return "&#" + c.charCodeAt(0) + ";"; }); }

  function judge(value, k) {
    if (!k || value === null || value === undefined) return "";
    var worse = function (v, t) { return k.direction === "higher" ? v < t : v > t; };
    if (worse(value, k.critical)) return "critical";
    if (worse(value, k.warn)) return "warn";
    return "ok";
  }

  function setTile(id, value, sub, status) {
    var el = $(id);
    el.querySelector(".value").textContent = value;
    el.querySelector(".sub").textContent = sub || "";
    el.className = "tile" + (status ? " status-" + status : "");
  }

  // A scope's goal on a KPI (goals are keyed by their own ids).
  function kpiOf(m, kpi) {
    var ks = Object.keys(m || {}).sort();
    for (var i = 0; i < ks.length; i++) { if (m[ks[i]].kpi === kpi) return m[ks[i]]; }
    return null;
  }

  function values(o) { return Object.keys(o).sort().map(function (k) { return [k, o[k]]; }); }

  function render() {
    var t = now();
    var queues = values(board.queues);
    var waiting = 0, oldest = null, oldestK = null;
    var worstSl = null, worstQ = null, worstK = null;
    queues.forEach(function (e) {
      var q = e[1];
      waiting += q.waiting;
      if (q.oldest_since !== null && (oldest === null || q.oldest_since < oldest)) { oldest = q.oldest_since; }
      oldestK = oldestK || kpiOf(q.kpis, "oldest_wait");
      if (q.sl_today !== null && (worstSl === null || q.sl_today < worstSl)) { worstSl = q.sl_today; worstQ = e[0]; worstK = kpiOf(q.kpis, "service_level"); }
    });
    setTile("tile-waiting", String(waiting), queues.length + " queue(s)", "");
    var oldestS = oldest === null ? 0 : (t - oldest) / 1000;
    setTile("tile-oldest", oldest === null ? "0:00" : duration(t - oldest), oldestK ? "target " + duration(oldestK.target * 1000) : "", judge(oldestS, oldestK));
    setTile("tile-sl", pct(worstSl), worstQ ? (queues.length > 1 ? "lowest: " + worstQ : "") + (worstK ? " · target " + pct(worstK.target) : "") : "", worstK ? worstK.status.replace("no_data", "") : "");

    var cb = { open: 0, overdue: 0, oldest: null }, other = {};
    values(board.backlog).forEach(function (e) {
      var b = e[1];
      if (b.kind === "callback") {
        cb.open += b.open; cb.overdue += b.overdue;
        if (b.oldest_created !== null && (cb.oldest === null || b.oldest_created < cb.oldest)) cb.oldest = b.oldest_created;
      } else {
        var o = other[b.kind] || (other[b.kind] = { open: 0, overdue: 0 });
        o.open += b.open; o.overdue += b.overdue;
      }
    });
    var cbK = null;
    queues.forEach(function (e) { cbK = cbK || kpiOf(e[1].kpis, "callbacks_overdue"); });
    setTile("tile-callbacks", String(cb.open), cb.overdue + " overdue" + (cb.oldest !== null ? " · oldest " + duration(t - cb.oldest) : ""), cb.overdue > 0 ? (judge(cb.overdue, cbK) || "critical") : (cb.open > 0 ? "ok" : ""));
    var kinds = Object.keys(other).sort();
    var otherOpen = kinds.reduce(function (n, k) { return n + other[k].open; }, 0);
    var otherOver = kinds.reduce(function (n, k) { return n + other[k].overdue; }, 0);
    setTile("tile-backlog", String(otherOpen), kinds.map(function (k) { return k.replace(/_/g, " ") + " " + other[k].open; }).join(" · "), otherOver > 0 ? "warn" : (otherOpen > 0 ? "ok" : ""));

    var main = queues.length === 1 ? queues[0][1] : null;
    var teams = values(board.teams);
    var team = params.get("team") && board.teams[params.get("team")] ? board.teams[params.get("team")] : null;
    // The whole desk on the default view: queues added up by their
    // populations (queues the privacy policy withholds are left out).
    var desk = queues.reduce(function (d, e) {
      var q = e[1];
      if (q.aht_s !== null && q.wrapped_today) { d.h += q.aht_s * q.wrapped_today; d.w += q.wrapped_today; }
      if (q.converted_today !== null && q.contacts_today) { d.cv += q.converted_today; d.c += q.contacts_today; }
      return d;
    }, { h: 0, w: 0, cv: 0, c: 0 });
    var deskAht = desk.w > 0 ? desk.h / desk.w : null;
    var deskConv = desk.c > 0 ? desk.cv / desk.c : null;
    var aht = team ? team.aht_s : (main ? main.aht_s : deskAht);
    var ahtK = kpiOf(team ? team.kpis : (main ? main.kpis : (queues[0] ? queues[0][1].kpis : null)), "aht");
    setTile("tile-aht", secs(aht), main ? "talk " + secs(main.talk_s) + " · hold " + secs(main.hold_s) + " · wrap " + secs(main.wrap_s) : "", judge(aht, ahtK));
    var revenue = queues.reduce(function (n, e) { return n + e[1].revenue_today; }, 0);
    var conv = team ? team.conversion : (main ? main.conversion : deskConv);
    var convK = kpiOf(team ? team.kpis : (main ? main.kpis : (queues[0] ? queues[0][1].kpis : null)), "conversion");
    // The guardrail: sales made while the team's primary goals failed
    // are not credited (docs/goals.md).
    var g = team ? team.guardrail : null;
    var held = g && !g.met;
    setTile("tile-sales", pct(conv), money(revenue) + (held ? " · credit withheld " + money(g.withheld_revenue) + (g.reasons.length ? ": " + g.reasons[0] : "") : ""), held ? "warn" : judge(conv, convK));

    var agents = values(board.agents);
    $("agents").innerHTML = agents.map(function (e) {
      var a = e[1];
      return '<div class="agent" data-state="' + esc(a.state) + '"><div class="name">' + esc(a.label) +
        '</div><div class="state">' + esc(a.state.replace("_", " ")) + (a.reason ? " · " + esc(a.reason) : "") +
        ' · <span class="since">' + duration(t - a.since) + "</span></div></div>";
    }).join("");
    var overdue = values(board.overdue).sort(function (a, b) { return a[1].due - b[1].due; }).slice(0, 12);
    $("overdue").innerHTML = overdue.map(function (e) {
      var o = e[1];
      return '<li data-task="' + esc(e[0]) + '"><span>' + esc(o.kind.replace(/_/g, " ")) + " · " + esc(o.queue) +
        '</span><span class="age">+' + duration(t - o.due) + "</span></li>";
    }).join("");
    $("clock").textContent = new Date(t).toLocaleTimeString("de-DE");
  }

  function apply(msg) {
    if (msg.now) offset = msg.now - Date.now();
    if (msg.type === "snapshot") {
      board = msg.board; lastSeq = msg.seq;
      $("scope").textContent = [params.get("team"), params.get("queue"), params.get("site")].filter(Boolean).join(" · ");
    } else if (msg.type === "delta") {
      if (msg.seq !== lastSeq + 1) { ws.send(JSON.stringify({ type: "resync" })); return; }
      lastSeq = msg.seq;
      Object.keys(msg.set || {}).forEach(function (k) { Object.assign(board[k], msg.set[k]); });
      Object.keys(msg.remove || {}).forEach(function (k) { msg.remove[k].forEach(function (id) { delete board[k][id]; }); });
    } else if (msg.type === "alert") {
      if (msg.seq !== lastSeq + 1) { ws.send(JSON.stringify({ type: "resync" })); return; }
      lastSeq = msg.seq;
    }
    render();
  }

  function connect() {
    ws = new WebSocket(feedUrl());
    ws.onopen = function () { backoff = 1000; $("conn").hidden = true; };
    ws.onmessage = function (ev) { try { apply(JSON.parse(ev.data)); } catch (e) { /* ignore a bad frame */ } };
    ws.onclose = function () {
      $("conn").hidden = false;
      ws = null;
      setTimeout(connect, backoff);
      backoff = Math.min(backoff * 2, 30000);
    };
  }

  setInterval(render, 1000);
  connect();
  render();
})();
