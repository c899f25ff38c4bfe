// The halosync dashboard. It reads /status, /deliveries/recent and /trends once, then
// follows GET /events, a server-sent events stream: each new delivery record as it is
// written, and the status when it changed. Should the stream fail, it polls every 2 s
// and tries the stream again now and then. The read token travels in an HttpOnly cookie
// (set by /dashboard?token=...); this script never sees it. Charts are inline SVG drawn
// here: the page loads nothing from elsewhere.
"use strict";

const POLL_MS = 2000; // polling, while the stream is down
const STREAM_RETRY_MS = 30000; // how often a failed stream is tried again
const TRENDS_MS = 15000; // how often the charts are read again when nothing happens
const TRENDS_AFTER_MS = 3000; // how soon after a change they are read again, at most
const TREND_HOURS = 3;
const KEEP_RECENT = 200;
const SVG = "http://www.w3.org/2000/svg";

// The counters shown, in this order, with their label's meaning.
const SHOWN = [
  ["DeliveriesAccepted", "deliveries accepted"],
  ["DeliveriesRejected", "deliveries rejected, by reason"],
  ["ChangesApplied", "changes, by outcome"],
  ["ChangesFiltered", "changes filtered, by rule"],
  ["ChangesFailed", "changes failed, by reason"],
  ["ChangesDeadLettered", "changes dead-lettered, by reason"],
];

// The error summary's parts, by their name in /status.
const ERRORS = [
  ["rejected", "rejected deliveries"],
  ["failed", "failed changes"],
  ["dead_lettered", "dead-lettered changes"],
  ["polls_failed", "failed polls"],
];

const MODES = { hybrid: "hybrid (webhooks and polls)", poll: "poll only", webhook: "webhook only" };

// The causes of a difference verification finds, in the order shown; a cause not listed
// here follows them.
const CAUSES = ["missing", "extra", "stale", "ahead", "fields"];

// What the page knows; every render draws from it.
const state = { status: null, recent: [], trends: [], live: false, error: "" };
let trendsRead = 0; // when the trends were last read

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    e.setAttribute(k, v);
  }
  for (const c of children) {
    e.append(c);
  }
  return e;
}

function svg(tag, attrs, ...children) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    e.setAttribute(k, String(v));
  }
  for (const c of children) {
    e.append(c);
  }
  return e;
}

async function getJSON(path) {
  const r = await fetch(path, { credentials: "same-origin", cache: "no-store" });
  if (r.status === 401) {
    throw new Error("not signed in: open the dashboard URL halosync serve printed (with ?token=...)");
  }
  if (!r.ok) {
    throw new Error(path + " answered " + r.status);
  }
  return r.json();
}

function when(iso) {
  if (!iso) {
    return "never";
  }
  const t = new Date(iso);
  const ago = Math.max(0, Math.round((Date.now() - t.getTime()) / 1000));
  let rel = ago + " s ago";
  if (ago >= 86400) {
    rel = Math.floor(ago / 86400) + " d ago";
  } else if (ago >= 3600) {
    rel = Math.floor(ago / 3600) + " h ago";
  } else if (ago >= 60) {
    rel = Math.floor(ago / 60) + " min ago";
  }
  return t.toLocaleString() + " (" + rel + ")";
}

function ms(v) {
  if (!v) {
    return "–";
  }
  if (v >= 86400000) {
    return (v / 86400000).toFixed(1) + " d";
  }
  if (v >= 3600000) {
    return (v / 3600000).toFixed(1) + " h";
  }
  if (v >= 60000) {
    return (v / 60000).toFixed(1) + " min";
  }
  if (v >= 1000) {
    return (v / 1000).toFixed(1) + " s";
  }
  return Math.round(v) + " ms";
}

function depth(prefix, q) {
  document.getElementById(prefix + "-visible").textContent = q ? q.visible : "–";
  document.getElementById(prefix + "-inflight").textContent = q ? q.in_flight : "–";
}

function facts(rows) {
  const dl = el("dl", { class: "facts" });
  for (const [name, title, value, cls] of rows) {
    dl.append(el("dt", {}, title), el("dd", { "data-fact": name, class: cls || "" }, value));
  }
  return dl;
}

// plural names a kind's objects as people say it: notes for actions.
function plural(k) {
  return k === "action" ? "notes" : k + "s";
}

// percent prints a share (0..1) as a percentage to one decimal, rounded down so that a
// share below 1 never reads 100; 1 reads 100.
function percent(share) {
  if (share >= 1) {
    return "100";
  }
  return (Math.floor(Math.max(0, share) * 1000 + 1e-9) / 10).toFixed(1);
}

// estimate is a kind's (or the connection's) share equal with its 95% interval.
function estimate(r) {
  if (!r.checked) {
    return "nothing checked";
  }
  return percent(r.estimate) + "% equal (" + percent(r.low) + "–" + percent(r.high) + "%, 95%)";
}

// causes lists the differences by cause, in CAUSES' order, or "none".
function causes(differing) {
  const d = differing || {};
  const names = Object.keys(d).filter((c) => d[c] > 0);
  names.sort((a, b) => {
    const ia = CAUSES.indexOf(a) < 0 ? CAUSES.length : CAUSES.indexOf(a);
    const ib = CAUSES.indexOf(b) < 0 ? CAUSES.length : CAUSES.indexOf(b);
    return ia - ib || a.localeCompare(b);
  });
  return names.length === 0 ? "none" : names.map((c) => c + " " + d[c]).join(", ");
}

// verification is the copy checked against Halo over the window: the connection's
// estimate on one line, then a row per kind; nothing when the report has none.
function verification(v) {
  const all = v.all || {};
  const differs = Object.values(all.differing || {}).some((n) => n > 0);
  const cls = !all.checked ? "empty" : differs ? "bad" : "good";
  const summary = el(
    "p",
    { class: "verify-summary" },
    el("span", { class: cls, "data-verify": "estimate" }, estimate(all)),
    " of " + (all.checked || 0) + " checked over the last " + v.window_hours + " h; differing: " + causes(all.differing) + "; repaired " + (all.repaired || 0) + "; last check " + when(all.last_checked_at),
  );
  const body = el("tbody");
  const names = Object.keys(v.kinds || {}).sort();
  for (const k of names) {
    const r = v.kinds[k];
    const differing = causes(r.differing);
    body.append(
      el(
        "tr",
        { "data-verify-kind": k },
        el("td", {}, plural(k)),
        el("td", { class: "n" }, String(r.checked || 0)),
        el("td", { class: "n" }, String(r.equal || 0)),
        el("td", {}, estimate(r)),
        el("td", { class: differing === "none" ? "" : "bad" }, differing),
        el("td", { class: "n" }, String(r.repaired || 0)),
        el("td", {}, when(r.last_checked_at)),
      ),
    );
  }
  const head = el("tr", {}, ...["kind", "checked", "equal", "estimate", "differing, by cause", "repaired", "last check"].map((h) => el("th", {}, h)));
  const box = el("div", { class: "verification", "data-verification": "" }, summary);
  if (names.length > 0) {
    box.append(el("table", { class: "verify" }, el("thead", {}, head), body));
  }
  return box;
}

function sync(c) {
  const fallback = c.fallback && c.fallback.active ? "polling at the fallback interval since " + when(c.fallback.since) : "off";
  let webhook = "not managed (no webhook.manage)";
  let cls = "";
  if (c.webhook && c.webhook.managed) {
    if (!c.webhook.checked_at) {
      webhook = "managed, not checked yet";
    } else {
      webhook = (c.webhook.healthy ? "healthy" : "unhealthy") + ", checked " + when(c.webhook.checked_at);
      cls = c.webhook.healthy ? "good" : "bad";
    }
  }
  const lat = c.sync_latency_ms || {};
  return facts([
    ["mode", "sync mode", (MODES[c.sync_mode] || c.sync_mode) + (c.polled ? "" : " (no halo: settings, not polled)")],
    ["fallback", "poll fallback", fallback, c.fallback && c.fallback.active ? "bad" : ""],
    ["last-delivery", "last delivery", when(c.last_delivery)],
    ["endpoints", "deliveries by endpoint", ["primary", "backup"].map((e) => e + " " + ((c.deliveries_by_endpoint || {})[e] || 0)).join(", ")],
    ["webhook", "managed webhook", webhook, cls],
    ["latency", "sync latency", "avg " + ms(lat.avg) + "; last hour avg " + ms(lat.last_hour_avg) + ", max " + ms(lat.last_hour_max)],
  ]);
}

function objects(c) {
  const dl = el("dl", { class: "objects", "data-objects": "" });
  const kinds = Object.keys(c.objects || {}).sort();
  if (!c.objects) {
    dl.append(el("dd", { class: "empty" }, "this store does not count its objects"));
  } else if (kinds.length === 0) {
    dl.append(el("dd", { class: "empty" }, "the copy holds nothing yet"));
  }
  for (const k of kinds) {
    dl.append(el("dd", { "data-kind": k }, el("span", {}, plural(k)), el("span", { class: "n" }, String(c.objects[k]))));
  }
  return dl;
}

function backfill(c) {
  if (!c.backfill || c.backfill.length === 0) {
    return el("p", { class: "empty" }, "not polled: nothing to backfill");
  }
  const body = el("tbody");
  for (const b of c.backfill) {
    const bar = el("progress", { max: String(b.total || 1), value: String(b.state === "done" ? b.total || 1 : b.done || 0) });
    let figures = "";
    if (b.state === "running" && b.total) {
      figures = b.done + " / " + b.total + ", " + b.per_second + "/s, " + (b.left || "0s") + " left";
    } else if (b.state === "running") {
      figures = "reading (Halo gave no total)";
    }
    const kind = plural(b.kind);
    const st = b.phase ? b.state + " (" + b.phase + ")" : b.state;
    body.append(el("tr", { "data-backfill": b.kind }, el("td", {}, kind), el("td", {}, st), el("td", {}, bar), el("td", {}, figures)));
  }
  return el("table", { class: "backfill" }, body);
}

function counters(entries) {
  const box = el("div", { class: "counters" });
  for (const [name, title] of SHOWN) {
    const dl = el("dl", { "data-counter": name }, el("dt", {}, title));
    const rows = entries.filter((e) => e.name === name);
    if (rows.length === 0) {
      dl.append(el("dd", { class: "empty" }, el("span", {}, "none"), el("span", {}, "0")));
    }
    for (const e of rows) {
      dl.append(el("dd", {}, el("span", {}, e.label || "all"), el("span", {}, String(e.value))));
    }
    box.append(dl);
  }
  return box;
}

function errors(c) {
  const box = el("div", { class: "counters errors", "data-errors": "" });
  for (const [name, title] of ERRORS) {
    const dl = el("dl", { "data-error": name }, el("dt", {}, title));
    const byReason = (c.errors || {})[name] || {};
    const reasons = Object.keys(byReason).sort();
    if (reasons.length === 0) {
      dl.append(el("dd", { class: "empty" }, el("span", {}, "none"), el("span", {}, "0")));
    }
    for (const r of reasons) {
      dl.append(el("dd", { class: "bad" }, el("span", {}, r || "all"), el("span", {}, String(byReason[r]))));
    }
    box.append(dl);
  }
  return box;
}

// chart draws one SVG of per-minute series over the last TREND_HOURS: bars (stacked) or
// lines, with the highest value labelled.
function chart(title, minutes, series, kind) {
  const W = 600;
  const H = 120;
  const PAD = 18;
  const slots = TREND_HOURS * 60;
  const end = Math.floor(Date.now() / 60000);
  const at = (m) => slots - 1 - (end - Math.floor(new Date(m.start).getTime() / 60000));
  let top = 0;
  for (const m of minutes) {
    let sum = 0;
    for (const s of series) {
      top = Math.max(top, m[s.key] || 0);
      sum += m[s.key] || 0;
    }
    if (kind === "bars") {
      top = Math.max(top, sum);
    }
  }
  const scale = top > 0 ? (H - PAD) / top : 0;
  const w = W / slots;
  const g = svg("svg", { viewBox: "0 0 " + W + " " + H, class: "chart", role: "img", "aria-label": title, "data-chart": title });
  g.append(svg("title", {}, title));
  g.append(svg("line", { x1: 0, y1: H - 0.5, x2: W, y2: H - 0.5, class: "axis" }));
  for (const s of series) {
    if (kind === "lines") {
      const pts = minutes.filter((m) => at(m) >= 0).map((m) => (at(m) * w + w / 2).toFixed(1) + "," + (H - (m[s.key] || 0) * scale).toFixed(1));
      if (pts.length === 1) {
        const [x, y] = pts[0].split(",");
        g.append(svg("circle", { cx: x, cy: y, r: 2, class: s.cls }));
      } else if (pts.length > 1) {
        g.append(svg("polyline", { points: pts.join(" "), class: s.cls }));
      }
    }
  }
  if (kind === "bars") {
    for (const m of minutes) {
      const x = at(m);
      if (x < 0) {
        continue;
      }
      let y = H;
      for (const s of series) {
        const h = (m[s.key] || 0) * scale;
        if (h > 0) {
          y -= h;
          g.append(svg("rect", { x: (x * w).toFixed(1), y: y.toFixed(1), width: Math.max(w - 0.5, 1).toFixed(1), height: h.toFixed(1), class: s.cls }));
        }
      }
    }
  }
  const label = kind === "lines" ? ms(top) : String(top);
  g.append(svg("text", { x: 2, y: 11, class: "label" }, "max " + (top ? label : "0") + " · last " + TREND_HOURS + " h"));
  const legend = el("p", { class: "legend" }, ...series.map((s) => el("span", { class: "key " + s.cls }, s.name)));
  return el("figure", {}, el("figcaption", {}, title), g, legend);
}

function charts(conn) {
  const minutes = state.trends.filter((m) => m.connection === conn);
  return el(
    "div",
    { class: "charts" },
    chart("deliveries per minute", minutes, [
      { key: "deliveries", name: "accepted", cls: "s-good" },
      { key: "rejected", name: "rejected", cls: "s-bad" },
    ], "bars"),
    chart("sync latency per minute", minutes, [
      { key: "latency_avg_ms", name: "average", cls: "s-avg" },
      { key: "latency_max_ms", name: "highest", cls: "s-max" },
    ], "lines"),
  );
}

function object(d) {
  if (!d.kind) {
    return "–";
  }
  let s = d.kind + " " + d.id;
  if (d.parent_id) {
    s += " (ticket " + d.parent_id + ")";
  }
  return s;
}

function deliveries(records) {
  if (records.length === 0) {
    return el("p", { class: "empty" }, "no delivery records yet");
  }
  const body = el("tbody");
  for (const d of records) {
    const time = new Date(d.processed_at);
    const attrs = { class: "delivery outcome-" + d.outcome, "data-outcome": d.outcome };
    if (d.delivery_id) {
      attrs["data-delivery-id"] = d.delivery_id;
    }
    body.append(
      el(
        "tr",
        attrs,
        el("td", { title: d.processed_at }, time.toLocaleTimeString()),
        el("td", {}, d.event || d.source || ""),
        el("td", {}, object(d)),
        el("td", { class: "outcome" }, d.outcome),
        el("td", { class: "reason" }, d.reason || (d.outcome === "applied" ? d.summary || "" : "")),
      ),
    );
  }
  const head = el("tr", {}, ...["time", "event", "object", "outcome", "reason"].map((h) => el("th", {}, h)));
  return el("table", { class: "deliveries" }, el("thead", {}, head), body);
}

function deadLetters(dl) {
  const box = document.getElementById("dead-letters");
  if (!dl || dl.count === 0) {
    box.replaceChildren(el("span", { class: "empty" }, "no dead letters"));
    return;
  }
  const list = el("ul", {});
  for (const m of dl.newest) {
    list.append(el("li", {}, when(m.sent_at) + ": " + (m.connection || "?") + " " + (m.kind || "") + ", " + m.reason + " (" + m.id + ")"));
  }
  box.replaceChildren(el("span", { class: "bad" }, dl.count + " dead letter" + (dl.count === 1 ? "" : "s") + "; newest:"), list);
}

function render() {
  const status = state.status;
  if (!status) {
    return;
  }
  depth("queue", status.queue);
  depth("dlq", status.dead_letter_queue);
  deadLetters(status.dead_letters);
  const conns = new Set(status.connections || []);
  const demo = new Set(status.demo_connections || []);
  const by = status.by_connection || {};
  for (const e of status.counters) {
    if (!e.connection.startsWith("_")) {
      conns.add(e.connection);
    }
  }
  for (const d of state.recent) {
    conns.add(d.connection);
  }
  const sections = [];
  for (const c of [...conns].sort()) {
    const records = state.recent.filter((d) => d.connection === c);
    if (c.startsWith("_")) {
      // Deliveries to no configured connection: only their refusals.
      sections.push(
        el("section", { class: "connection unknown", "data-connection": c }, el("h2", {}, "deliveries to no configured connection"), deliveries(records)),
      );
      continue;
    }
    const info = by[c] || {};
    sections.push(
      el(
        "section",
        { class: "connection", "data-connection": c },
        el("h2", {}, "connection " + c, ...(demo.has(c) ? [" ", el("span", { class: "demo" }, "demo traffic")] : [])),
        sync(info),
        ...(info.verification ? [el("h3", {}, "verification against Halo"), verification(info.verification)] : []),
        el("h3", {}, "objects in the copy"),
        objects(info),
        el("h3", {}, "backfill"),
        backfill(info),
        el("h3", {}, "trends"),
        charts(c),
        el("h3", {}, "errors"),
        errors(info),
        el("h3", {}, "counters"),
        counters(status.counters.filter((e) => e.connection === c)),
        el("h3", {}, "recent deliveries"),
        deliveries(records),
      ),
    );
  }
  document.getElementById("connections").replaceChildren(...sections);
  const line = document.getElementById("state");
  if (state.error) {
    line.className = "error";
    line.textContent = state.error;
  } else {
    line.className = "";
    line.textContent = "updated " + new Date().toLocaleTimeString() + (state.live ? " · live" : " · polling every 2 s");
  }
}

// later returns a function that runs fn once, wait() ms after it is first called,
// however often it is called meanwhile.
function later(fn, wait) {
  let timer = null;
  return () => {
    if (timer === null) {
      timer = setTimeout(() => {
        timer = null;
        fn();
      }, wait());
    }
  };
}

// show renders soon, once for everything that arrived meanwhile: a busy server sends
// many records a second, and the page need not be drawn for each.
const show = later(render, () => 100);

function fail(err) {
  state.error = err.message;
  const line = document.getElementById("state");
  line.className = "error";
  line.textContent = err.message;
}

// arriving holds, for each readAll under way, the records the stream pushed while it
// read the list: the list may have been read before them, and they are not to be lost.
const arriving = new Set();

async function readAll() {
  const pushed = [];
  arriving.add(pushed);
  let got;
  try {
    got = await Promise.all([getJSON("/status"), getJSON("/deliveries/recent"), getJSON("/trends?hours=" + TREND_HOURS)]);
  } finally {
    arriving.delete(pushed);
  }
  const seen = new Set(got[1].map((d) => JSON.stringify(d)));
  for (const d of pushed) {
    if (!seen.has(JSON.stringify(d))) {
      got[1].unshift(d);
    }
  }
  const [status, recent, trends] = got;
  state.status = status;
  state.recent = recent.slice(0, KEEP_RECENT);
  state.trends = trends.minutes;
  trendsRead = Date.now();
  state.error = "";
  render();
}

// changed reads the trends again after a change: at once, or when TRENDS_AFTER_MS have
// passed since the last read (a status event comes every second while things happen).
const changed = later(readTrends, () => Math.max(0, TRENDS_AFTER_MS - (Date.now() - trendsRead)));

async function readTrends() {
  trendsRead = Date.now();
  try {
    state.trends = (await getJSON("/trends?hours=" + TREND_HOURS)).minutes;
    render();
  } catch (err) {
    fail(err);
  }
}

let poller = null;

function poll() {
  if (poller === null) {
    poller = setInterval(() => readAll().catch(fail), POLL_MS);
  }
}

function stopPolling() {
  if (poller !== null) {
    clearInterval(poller);
    poller = null;
  }
}

// follow opens the event stream; the browser reconnects by itself after a dropped
// stream, but not after a refusal (401, 503): then the page polls and tries again later.
function follow() {
  const es = new EventSource("/events");
  es.addEventListener("open", () => {
    state.live = true;
    stopPolling();
    readAll().catch(fail); // what happened while the stream was down
  });
  es.addEventListener("status", (ev) => {
    state.status = JSON.parse(ev.data);
    state.error = "";
    show();
    changed();
  });
  es.addEventListener("delivery", (ev) => {
    const d = JSON.parse(ev.data);
    for (const pushed of arriving) {
      pushed.push(d);
    }
    state.recent.unshift(d);
    state.recent.length = Math.min(state.recent.length, KEEP_RECENT);
    show();
  });
  es.addEventListener("error", () => {
    state.live = false;
    poll();
    if (es.readyState === EventSource.CLOSED) {
      setTimeout(follow, STREAM_RETRY_MS);
    }
  });
}

readAll().catch(fail);
follow();
setInterval(readTrends, TRENDS_MS);
setInterval(show, 5000); // keeps "… ago" current while nothing happens
