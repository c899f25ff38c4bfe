// The halosync dashboard: polls /status and /deliveries/recent every 2 s and shows, per
// connection, the counters, and the newest delivery records. The read token travels in
// an HttpOnly cookie (set by /dashboard?token=...); this script never sees it.
"use strict";

const EVERY_MS = 2000;

// The counters shown, in this order, with their label's meaning.
const SHOWN = [
  ["DeliveriesAccepted", "deliveries accepted"],
  ["DeliveriesRejected", "deliveries rejected, by reason"],
  ["ChangesApplied", "changes, by outcome"],
  ["ChangesFiltered", "changes filtered, by rule"],
  ["ChangesFailed", "changes failed, by reason"],
  ["ChangesDeadLettered", "changes dead-lettered, by reason"],
];

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

function depth(prefix, q) {
  document.getElementById(prefix + "-visible").textContent = q ? q.visible : "–";
  document.getElementById(prefix + "-inflight").textContent = q ? q.in_flight : "–";
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

function object(d) {
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
    body.append(
      el(
        "tr",
        { class: "delivery", "data-delivery-id": d.delivery_id },
        el("td", { title: d.processed_at }, time.toLocaleTimeString()),
        el("td", {}, d.event || d.source),
        el("td", {}, object(d)),
        el("td", { class: "outcome-" + d.outcome }, d.outcome),
        el("td", { class: "reason" }, d.reason || ""),
      ),
    );
  }
  const head = el("tr", {}, ...["time", "event", "object", "outcome", "reason"].map((h) => el("th", {}, h)));
  return el("table", {}, el("thead", {}, head), body);
}

function render(status, recent) {
  depth("queue", status.queue);
  depth("dlq", status.dead_letter_queue);
  const conns = new Set(status.connections || []);
  const demo = new Set(status.demo_connections || []);
  for (const e of status.counters) {
    if (!e.connection.startsWith("_")) {
      conns.add(e.connection);
    }
  }
  for (const d of recent) {
    conns.add(d.connection);
  }
  const main = document.getElementById("connections");
  const sections = [];
  for (const c of [...conns].sort()) {
    sections.push(
      el(
        "section",
        { class: "connection", "data-connection": c },
        el("h2", {}, "connection " + c, ...(demo.has(c) ? [" ", el("span", { class: "demo" }, "demo traffic")] : [])),
        counters(status.counters.filter((e) => e.connection === c)),
        el("h3", {}, "recent deliveries"),
        deliveries(recent.filter((d) => d.connection === c)),
      ),
    );
  }
  main.replaceChildren(...sections);
}

async function refresh() {
  const state = document.getElementById("state");
  try {
    const [status, recent] = await Promise.all([getJSON("/status"), getJSON("/deliveries/recent")]);
    render(status, recent);
    state.className = "";
    state.textContent = "updated " + new Date().toLocaleTimeString();
  } catch (err) {
    state.className = "error";
    state.textContent = err.message;
  }
}

refresh();
setInterval(refresh, EVERY_MS);
