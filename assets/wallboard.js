// callwatch wallboard: renders the /ws feed (protocol 1, docs/feed.md).
// Runs for weeks on a TV: one websocket, one 1 s timer, DOM updated in
// place; bounded arrays only (alerts), no listeners added per message.
// What it shows comes from the goal matrix: the goal tiles are the goals
// of the scope shown (its scorecard), coloured by their status; the live
// tiles take their thresholds from the goals on their KPIs.
(function () {
  "use strict";
  var params = new URLSearchParams(location.search);
  var root = document.documentElement.dataset;
  var locale = root.locale || "en";
  var currency = root.currency || "EUR";
  var zones = {};
  try { zones = JSON.parse(root.timezones || "{}"); } catch (e) { zones = {}; }
  var board = { queues: {}, teams: {}, agents: {}, backlog: {}, overdue: {}, scorecards: {} };
  var alerts = []; // newest first, at most ALERTS_MAX
  var ALERTS_MAX = 20, ALERT_TTL = 15 * 60 * 1000;
  // KPIs a live tile shows (counting up by the second), not a goal tile.
  var LIVE = { oldest_wait: 1, callbacks_open: 1, callbacks_overdue: 1, backlog_overdue: 1 };
  var RANK = { critical: 3, warn: 2, ok: 1, no_data: 0, not_enough_data: 0 };
  var WORD = { critical: "below minimum", warn: "warning", ok: "OK", no_data: "no data yet", not_enough_data: "not enough evaluations" };
  var offset = 0; // server now - local now, ms
  var lastSeq = 0;
  var ws = null;
  var backoff = 1000;
  var $ = function (id) { return document.getElementById(id); };

  function numberFormat(opts) {
    try { return new Intl.NumberFormat(locale, opts); } catch (e) { return new Intl.NumberFormat("en", opts); }
  }
  var pctF = numberFormat({ style: "percent", maximumFractionDigits: 0 });
  var moneyF = numberFormat({ style: "currency", currency: currency, maximumFractionDigits: 0 });
  var intF = numberFormat({ maximumFractionDigits: 0 });

  // The daemons to read from: the one that served the page, then its HA
  // peers (`peers=` parameter or [wallboard] peers), in that order.
  var hosts = [location.host];
  (function () {
    var list = [];
    if (params.get("peers")) list = params.get("peers").split(",");
    else { try { list = JSON.parse(root.peers || "[]"); } catch (e) { list = []; } }
    list.forEach(function (p) {
      var h = String(p).trim().replace(/^[a-z]+:\/\//i, "").replace(/\/.*$/, "");
      if (h && hosts.indexOf(h) < 0) hosts.push(h);
    });
  })();
  var current = 0, lostAt = 0;

  function feedUrl(host) {
    var q = new URLSearchParams();
    ["queue", "queues", "team", "teams", "site", "sites", "kind", "kinds", "token"].forEach(function (k) {
      if (params.get(k)) q.set(k, params.get(k));
    });
    q.set("scorecards", "1");
    var proto = location.protocol === "https:" ? "wss://" : "ws://";
    return proto + host + "/ws?" + q.toString();
  }

  function now() { return Date.now() + offset; }

  function duration(ms) {
    var s = Math.max(0, Math.floor(ms / 1000));
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    if (h > 0) return h + "h " + (m < 10 ? "0" : "") + m + "m";
    return m + ":" + (r < 10 ? "0" : "") + r;
  }

  function nil(v) { return v === null || v === undefined; }
  function pct(v) { return nil(v) ? "–" : pctF.format(v); }
  function money(v) { return moneyF.format(v || 0); }
  function format(unit, v) {
    if (nil(v)) return "–";
    if (unit === "ratio") return pct(v);
    if (unit === "seconds") return duration(v * 1000);
    if (unit === "money") return money(v);
    return intF.format(v);
  }
  function esc(s) { return String(s).replace(/[&<>"']/g, function (c) { return "&#" + c.charCodeAt(0) + ";"; }); }
  function list(k) {
    var v = params.get(k) || params.get(k + "s");
    return v ? v.split(",").map(function (s) { return s.trim(); }).filter(Boolean) : [];
  }

  function judge(value, k) {
    if (!k || nil(value)) return "";
    var worse = function (v, t) { return k.direction === "higher" ? v < t : v > t; };
    if (worse(value, k.critical)) return "critical";
    if (worse(value, k.warn)) return "warn";
    return "ok";
  }

  // `sub` is [badge, rest]: the status word first, so status is never
  // colour alone.
  function setTile(el, value, badge, rest, status) {
    el.querySelector(".value").textContent = value;
    var sub = el.querySelector(".sub");
    sub.innerHTML = (badge ? '<span class="badge">' + esc(badge) + "</span>" + (rest ? " · " : "") : "") + esc(rest || "");
    el.className = "tile" + (status ? " status-" + status : "");
  }

  // A scope's goal on a KPI, from a kpis map (keyed by goal id).
  function kpiOf(m, kpi) {
    var ks = Object.keys(m || {}).sort();
    for (var i = 0; i < ks.length; i++) { if (m[ks[i]].kpi === kpi) return m[ks[i]]; }
    return null;
  }

  function values(o) { return Object.keys(o || {}).sort().map(function (k) { return [k, o[k]]; }); }

  // The scorecards of the scope shown: the teams asked for, else the
  // queues, else the sites, else every site (the desk).
  function scopeCards() {
    var cards = board.scorecards || {};
    var pick = function (kind, names) {
      return names.map(function (n) { return cards[kind + ":" + n]; }).filter(Boolean);
    };
    if (list("team").length) return pick("team", list("team"));
    if (list("queue").length) return pick("queue", list("queue"));
    var sites = list("site").length ? list("site")
      : values(cards).filter(function (e) { return e[1].kind === "site"; }).map(function (e) { return e[1].name; });
    return pick("site", sites);
  }

  // Per goal id (in the matrix's order), the worst of the cards' goals.
  function worstGoals(cards) {
    var order = [], by = {};
    cards.forEach(function (c) {
      c.goals.forEach(function (g) {
        var cur = by[g.goal];
        if (!cur) { order.push(g.goal); by[g.goal] = { g: g, card: c }; }
        else if ((RANK[g.status] || 0) > (RANK[cur.g.status] || 0)) by[g.goal] = { g: g, card: c };
      });
    });
    return order.map(function (id) { return by[id]; });
  }

  function goalOn(cards, kpi) {
    for (var i = 0; i < cards.length; i++) {
      for (var j = 0; j < cards[i].goals.length; j++) {
        var g = cards[i].goals[j];
        if (g.kpi === kpi) return { kpi: kpi, target: g.target, warn: g.warn, critical: g.minimum, direction: g.direction, status: g.status };
      }
    }
    return null;
  }

  function renderGoals(cards) {
    var box = $("goals");
    var GOALS_MAX = 16;
    var all = worstGoals(cards).filter(function (e) { return !LIVE[e.g.kpi]; });
    var rows = all.slice(0, all.length > GOALS_MAX ? GOALS_MAX - 1 : GOALS_MAX);
    var extra = all.length - rows.length;
    var ids = rows.map(function (e) { return e.g.goal; }).join(",") + "+" + extra;
    if (box.dataset.ids !== ids) {
      box.dataset.ids = ids;
      // Up to six goals in one row of full tiles; more in two rows of
      // compact ones (a matrix of more than GOALS_MAX shows the rest at
      // /goals and says so).
      var n = rows.length + (extra > 0 ? 1 : 0);
      box.className = "tiles goals" + (n > 6 ? " compact" : "");
      box.style.setProperty("--cols", String(n > 6 ? Math.ceil(n / 2) : Math.max(n, 1)));
      box.innerHTML = rows.map(function (e) {
        return '<div class="tile goal" id="goal-' + esc(e.g.goal) + '" data-kpi="' + esc(e.g.kpi) + '" data-category="' + esc(e.g.category) +
          '"><h2>' + esc(e.g.title) + '</h2><div class="value"></div><div class="sub"></div></div>';
      }).join("") + (extra > 0 ? '<div class="tile" id="goals-more"><h2>More goals</h2><div class="value">+' + extra +
        '</div><div class="sub">on the goal sheet, /goals</div></div>' : "");
      box.hidden = rows.length === 0;
    }
    rows.forEach(function (e) {
      var g = e.g, el = $("goal-" + g.goal);
      if (!el) return;
      var rest = "target " + format(g.unit, g.target);
      if (cards.length > 1) rest += " · lowest: " + e.card.name;
      if (g.period !== "today") rest += " · " + g.period;
      var status = g.status === "no_data" || g.status === "not_enough_data" ? "" : g.status;
      setTile(el, nil(g.value) ? "no data" : format(g.unit, g.value), WORD[g.status] || g.status, rest, status);
    });
  }

  function renderScore(cards) {
    var el = $("tile-score");
    if (!cards.length) { setTile(el, "no goals", "", "see /goals", ""); return; }
    var low = null, held = null, sales = null, withheld = 0;
    cards.forEach(function (c) {
      if (!nil(c.primary_score) && (low === null || c.primary_score < low.primary_score)) low = c;
      if (!nil(c.sales_score) && (sales === null || c.sales_score < sales)) sales = c.sales_score;
      if (c.guardrail && !c.guardrail.met && !held) held = c;
      withheld += (c.withheld || []).filter(function (w) { return w !== "guardrail_amounts"; }).length;
    });
    var rest = "sales " + pct(sales);
    if (cards.length > 1 && low) rest += " · lowest: " + low.name;
    if (withheld) rest += " · " + withheld + " goal(s) withheld (small group)";
    if (held) {
      var g = held.guardrail;
      var amount = (held.withheld || []).indexOf("guardrail_amounts") >= 0 ? "" : " " + money(g.withheld_revenue);
      setTile(el, pct(low ? low.primary_score : null), "sales credit withheld" + amount,
        (g.reasons.length ? g.reasons[0] + (cards.length > 1 ? " (" + held.name + ")" : "") + " · " : "") + rest, "warn");
    } else {
      setTile(el, pct(low ? low.primary_score : null), "sales credited", rest, low ? "ok" : "");
    }
  }

  // Hides the children of `box` that do not fit in `bound` (an element
  // whose bottom is the limit) and shows "+N more" in `more`: nobody is
  // hidden without the page saying so.
  function clip(box, bound, more, noun) {
    var kids = box.children, n = kids.length, hidden = 0;
    more.hidden = true;
    for (var i = 0; i < n; i++) kids[i].style.display = "";
    var limit = function () { var r = bound.getBoundingClientRect(); return r.bottom - parseFloat(getComputedStyle(bound).paddingBottom); };
    if (n === 0 || kids[n - 1].getBoundingClientRect().bottom <= limit()) return 0;
    more.hidden = false;
    more.textContent = "+" + n + " more " + noun;
    for (var j = n - 1; j >= 0; j--) {
      var over = kids[j].getBoundingClientRect().bottom > limit() || more.getBoundingClientRect().bottom > limit();
      if (!over) break;
      kids[j].style.display = "none";
      hidden++;
      more.textContent = "+" + hidden + " more " + noun;
    }
    return hidden;
  }

  // Shrinks a value that is wider than its tile, never wraps it.
  function fit(el) {
    el.style.fontSize = "";
    for (var i = 0; i < 4 && el.scrollWidth > el.clientWidth; i++) {
      var size = parseFloat(getComputedStyle(el).fontSize);
      el.style.fontSize = Math.floor(size * el.clientWidth / el.scrollWidth * 0.98) + "px";
    }
  }

  function alertText(a, t) {
    if (a.kind === "task_overdue") return a.task_kind.replace(/_/g, " ") + " overdue in " + a.queue + " (+" + duration(t - a.due) + ")";
    if (a.kind === "oldest_wait") return a.queue + ": caller waiting " + duration(t - a.since) + " (" + (a.level === "critical" ? "minimum " : "warning at ") + duration(a.threshold_s * 1000) + ")";
    if (a.kind === "pause_too_long") return a.agent + " paused" + (a.reason ? " (" + a.reason + ")" : "") + " for " + duration(t - a.since);
    return a.kind.replace(/_/g, " ");
  }

  // An alert stays until what it is about is over (or ALERT_TTL).
  function alertLive(a, t) {
    if (t - a.received > ALERT_TTL) return false;
    if (a.kind === "task_overdue") return !!board.overdue[a.task];
    if (a.kind === "oldest_wait") { var q = board.queues[a.queue]; return !!q && q.oldest_since === a.since; }
    if (a.kind === "pause_too_long") { var g = board.agents[a.agent]; return !!g && g.state === "paused" && g.since === a.since; }
    return true;
  }

  function alertKey(a) { return a.kind + ":" + (a.task || a.queue || a.agent || ""); }

  function renderAlerts(t) {
    alerts = alerts.filter(function (a) { return alertLive(a, t); });
    var shown = alerts.slice(0, 2);
    var html = shown.map(function (a) {
      var level = a.kind === "oldest_wait" && a.level !== "critical" ? "warning" : "critical";
      return '<div class="alert level-' + level + '" data-kind="' + esc(a.kind) + '">' + esc(alertText(a, t)) + "</div>";
    }).join("");
    if (alerts.length > shown.length) html += '<div class="alert more">+' + (alerts.length - shown.length) + " more</div>";
    $("alerts").innerHTML = html;
  }

  function urgency(a, b) {
    var ua = a[1].waiting > 0 ? a[1].oldest_since : Infinity, ub = b[1].waiting > 0 ? b[1].oldest_since : Infinity;
    if (ua !== ub) return ua < ub ? -1 : 1;
    return a[0] < b[0] ? -1 : (a[0] > b[0] ? 1 : 0);
  }

  function render() {
    var t = now();
    var cards = scopeCards();
    var queues = values(board.queues);
    var callbacksBy = {};
    var cb = { open: 0, overdue: 0, oldest: null }, other = {};
    values(board.backlog).forEach(function (e) {
      var b = e[1];
      if (b.kind === "callback") {
        cb.open += b.open; cb.overdue += b.overdue;
        if (b.oldest_created !== null && (cb.oldest === null || b.oldest_created < cb.oldest)) cb.oldest = b.oldest_created;
        var q = callbacksBy[b.queue] || (callbacksBy[b.queue] = { overdue: 0, soon: 0 });
        q.overdue += b.overdue; q.soon += b.due_soon;
      } else {
        var o = other[b.kind] || (other[b.kind] = { open: 0, overdue: 0 });
        o.open += b.open; o.overdue += b.overdue;
      }
    });

    var waiting = 0, oldest = null, oldestQ = null;
    queues.forEach(function (e) {
      var q = e[1];
      waiting += q.waiting;
      if (q.oldest_since !== null && (oldest === null || q.oldest_since < oldest)) { oldest = q.oldest_since; oldestQ = e[0]; }
    });
    setTile($("tile-waiting"), intF.format(waiting), "", queues.length + " queue(s)", "");
    var oldestK = goalOn(cards, "oldest_wait") || (oldestQ ? kpiOf(board.queues[oldestQ].kpis, "oldest_wait") : null);
    var oldestS = oldest === null ? 0 : (t - oldest) / 1000;
    var os = judge(oldestS, oldestK);
    setTile($("tile-oldest"), oldest === null ? "0:00" : duration(t - oldest), os ? WORD[os] : "",
      (oldestK ? "target " + duration(oldestK.target * 1000) : "") + (oldestQ && queues.length > 1 ? " · " + oldestQ : ""), os);

    var cbK = goalOn(cards, "callbacks_overdue");
    var cs = cb.overdue > 0 ? (judge(cb.overdue, cbK) || "critical") : (cb.open > 0 ? "ok" : "");
    setTile($("tile-callbacks"), intF.format(cb.open), cs ? (cb.overdue > 0 ? cb.overdue + " overdue" : "none overdue") : "",
      cb.oldest !== null ? "oldest " + duration(t - cb.oldest) : "", cs);
    var kinds = Object.keys(other).sort();
    var otherOpen = kinds.reduce(function (n, k) { return n + other[k].open; }, 0);
    var otherOver = kinds.reduce(function (n, k) { return n + other[k].overdue; }, 0);
    var bs = otherOver > 0 ? "warn" : (otherOpen > 0 ? "ok" : "");
    setTile($("tile-backlog"), intF.format(otherOpen), bs ? (otherOver > 0 ? otherOver + " overdue" : "none overdue") : "",
      kinds.map(function (k) { return k.replace(/_/g, " ") + " " + other[k].open; }).join(" · "), bs);

    renderScore(cards);
    renderGoals(cards);

    queues.sort(urgency);
    $("queues").innerHTML = queues.map(function (e) {
      var q = e[1], c = callbacksBy[e[0]] || { overdue: 0, soon: 0 };
      var ok = kpiOf(q.kpis, "oldest_wait");
      var slk = kpiOf(q.kpis, "service_level");
      var wait = q.oldest_since === null ? "–" : duration(t - q.oldest_since);
      var ws_ = q.oldest_since === null ? "" : judge((t - q.oldest_since) / 1000, ok);
      var sl = slk && slk.status !== "no_data" ? slk.status : "";
      var due = c.overdue > 0 ? "critical" : (c.soon > 0 ? "warn" : "");
      return '<tr data-queue="' + esc(e[0]) + '"><td>' + esc(e[0]) + "</td><td>" + intF.format(q.waiting) +
        '</td><td class="' + ws_ + '">' + wait + '</td><td class="' + sl + '">' + pct(q.sl_today) +
        '</td><td class="' + due + '">' + (c.overdue > 0 ? intF.format(c.overdue) + " late" : intF.format(c.soon)) + "</td></tr>";
    }).join("");

    var order = { paused: 0, wrap_up: 1, on_hold: 2, on_call: 3, available: 4 };
    var agents = values(board.agents).sort(function (a, b) {
      var d = (order[a[1].state] || 5) - (order[b[1].state] || 5);
      return d !== 0 ? d : a[1].since - b[1].since;
    });
    $("agents").innerHTML = agents.map(function (e) {
      var a = e[1];
      return '<div class="agent" data-state="' + esc(a.state) + '"><div class="name">' + esc(a.label) +
        '</div><div class="state">' + esc(a.state.replace("_", " ")) + (a.reason ? " · " + esc(a.reason) : "") +
        ' · <span class="since">' + duration(t - a.since) + "</span></div></div>";
    }).join("");
    var overdue = values(board.overdue).sort(function (a, b) { return a[1].due - b[1].due; });
    $("overdue").innerHTML = overdue.map(function (e) {
      var o = e[1];
      return '<li data-task="' + esc(e[0]) + '"><span>' + esc(o.kind.replace(/_/g, " ")) + " · " + esc(o.queue) +
        '</span><span class="age">+' + duration(t - o.due) + "</span></li>";
    }).join("");
    renderAlerts(t);

    // Layout last: clip lists to their panels, shrink wide values.
    clip($("queues"), $("queues").closest(".panel"), $("queues-more"), "queues");
    clipAgents();
    clip($("overdue"), $("overdue").closest(".panel"), $("overdue-more"), "overdue");
    var vals = document.querySelectorAll(".tile .value");
    for (var i = 0; i < vals.length; i++) fit(vals[i]);

    var site = list("site")[0] || (list("team")[0] && board.teams[list("team")[0]] ? board.teams[list("team")[0]].site : null) || root.site;
    var clock;
    try { clock = new Date(t).toLocaleTimeString(locale, { timeZone: zones[site] || undefined }); } catch (e) { clock = new Date(t).toLocaleTimeString(); }
    $("clock").textContent = clock;
    // For tests and kiosk scripts: the viewport the last layout was for.
    document.body.dataset.rendered = innerWidth + "x" + innerHeight;
  }

  // The agent grid: the last visible chip becomes "+N more".
  function clipAgents() {
    var box = $("agents"), kids = box.children, n = kids.length;
    if (n === 0) return;
    var bottom = box.getBoundingClientRect().bottom;
    var fits = 0;
    while (fits < n && kids[fits].getBoundingClientRect().bottom <= bottom + 0.5) fits++;
    if (fits === n) return;
    var keep = Math.max(fits - 1, 0);
    for (var i = n - 1; i >= keep; i--) box.removeChild(kids[i]);
    var more = document.createElement("div");
    more.className = "agent more";
    more.id = "agents-more";
    more.dataset.hidden = String(n - keep);
    more.textContent = "+" + (n - keep) + " more";
    box.appendChild(more);
  }

  function apply(msg) {
    if (msg.now) offset = msg.now - Date.now();
    if (msg.type === "snapshot") {
      board = msg.board; lastSeq = msg.seq;
      ["queues", "teams", "agents", "backlog", "overdue", "scorecards"].forEach(function (k) { board[k] = board[k] || {}; });
      $("scope").textContent = [params.get("team"), params.get("queue"), params.get("site")].filter(Boolean).join(" · ");
    } else if (msg.type === "delta") {
      if (msg.seq !== lastSeq + 1) { ws.send(JSON.stringify({ type: "resync" })); return; }
      lastSeq = msg.seq;
      Object.keys(msg.set || {}).forEach(function (k) { board[k] = Object.assign(board[k] || {}, msg.set[k]); });
      Object.keys(msg.remove || {}).forEach(function (k) { msg.remove[k].forEach(function (id) { if (board[k]) delete board[k][id]; }); });
    } else if (msg.type === "alert") {
      if (msg.seq !== lastSeq + 1) { ws.send(JSON.stringify({ type: "resync" })); return; }
      lastSeq = msg.seq;
      var a = msg.alert;
      a.received = now();
      var key = alertKey(a);
      alerts = [a].concat(alerts.filter(function (x) { return alertKey(x) !== key; })).slice(0, ALERTS_MAX);
    }
    render();
  }

  // A lost daemon is replaced by the next one at once; only after every
  // one was tried does the page back off.
  function connect() {
    var host = hosts[current];
    var sock = new WebSocket(feedUrl(host));
    ws = sock;
    sock.onopen = function () {
      backoff = 1000;
      $("conn").hidden = true;
      root.feed = host;
      if (lostAt) { root.failoverMs = String(Date.now() - lostAt); lostAt = 0; }
    };
    sock.onmessage = function (ev) { try { apply(JSON.parse(ev.data)); } catch (e) { /* ignore a bad frame */ } };
    sock.onclose = function () {
      if (ws !== sock) return;
      $("conn").hidden = false;
      ws = null;
      if (!lostAt) lostAt = Date.now();
      current = (current + 1) % hosts.length;
      if (current !== 0) { connect(); return; }
      setTimeout(connect, backoff);
      backoff = Math.min(backoff * 2, 30000);
    };
  }

  window.addEventListener("resize", render);
  setInterval(render, 1000);
  connect();
  render();
})();
