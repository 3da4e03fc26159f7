/**
 * GET /ui: the host's page, one self-contained document (no CDN, no address but the executor's own)
 * that reads GET /stats, /tasks, /requests and /usage once a second and draws them: the capacity, the
 * tasks, the image pulls under way, the line, the last requests and their latencies, and what each
 * task key used (a table sorted by any column, by a click on its head). Read-only: it sends nothing but those
 * GETs. Its script and style are allowed by hash in a strict Content-Security-Policy. Imported on
 * the first GET /ui only (status-routes.ts), so an executor nobody looks at never loads it.
 */
import type { Answer } from "./errors.ts";

const STYLE = `
body{font:14px system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1d2329}
header{display:flex;gap:1em;align-items:baseline;padding:.8em 1.2em;background:#1d2329;color:#fff}
header h1{font-size:1.1em;margin:0}#state{font-weight:600}#updated{margin-left:auto;opacity:.7}
main{padding:1em 1.2em;display:grid;gap:1em}section{background:#fff;border-radius:6px;padding:.8em 1em;box-shadow:0 1px 2px #0002}
h2{font-size:1em;margin:0 0 .6em}.bars{display:grid;grid-template-columns:7em 1fr 12em;gap:.4em 1em;align-items:center}
.bar{height:.9em;background:#e3e6ea;border-radius:3px;overflow:hidden}.fill{height:100%;background:#2f7de1}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.25em .6em;border-bottom:1px solid #eceef1;white-space:nowrap}
th{font-weight:600;color:#56606b}#usage th{cursor:pointer}td.num{text-align:right;font-variant-numeric:tabular-nums}.bad{color:#b3261e}.cold{color:#9a5b00}
.empty{color:#8a939c}svg{width:100%;height:80px;background:#fafbfc}#error{display:none;background:#fde7e6;color:#b3261e;padding:.6em 1.2em}
`;

const SCRIPT = `
"use strict";
const $ = (id) => document.getElementById(id);
const el = (tag, text, cls) => { const e = document.createElement(tag); if (text !== undefined) e.textContent = String(text); if (cls) e.className = cls; return e; };
function bar(label, used, total, unit) {
  const share = total > 0 ? Math.min(100, (used / total) * 100) : 0;
  const b = el("div", undefined, "bar"); const f = el("div", undefined, "fill"); f.style.width = share.toFixed(1) + "%"; b.append(f);
  const n = (x) => Math.round(x * 10) / 10;
  return [el("div", label), b, el("div", n(used) + " of " + n(total) + " " + unit + " reserved, " + n(total - used) + " free")];
}
function table(id, head, rows, empty) {
  const t = $(id); t.replaceChildren();
  const tr = el("tr"); for (const h of head) tr.append(el("th", h)); t.append(tr);
  if (rows.length === 0) { const r = el("tr"); const c = el("td", empty, "empty"); c.colSpan = head.length; r.append(c); t.append(r); return; }
  for (const row of rows) { const r = el("tr"); for (const [v, cls] of row) r.append(el("td", v, cls)); t.append(r); }
}
let usageSort = { col: 4, desc: true };
function usageTable(keys) {
  const fmt = (v) => Math.round(v * 10) / 10;
  const rows = keys.map((k) => [k.image, k.runtime, k.resource.cpu, k.resource.mem, k.requests, k.cold_starts, fmt(k.cpu_ms.mean), fmt(k.cpu_ms.p95), fmt(k.cpu_ms.total), fmt(k.mem_peak_mb.max), fmt(k.wall_ms.p50), fmt(k.start_ms.mean)]);
  const { col, desc } = usageSort;
  rows.sort((a, b) => (typeof a[col] === "number" ? a[col] - b[col] : String(a[col]).localeCompare(String(b[col]))) * (desc ? -1 : 1));
  const head = ["image", "runtime", "cpu", "mem MB", "requests", "cold starts", "CPU ms mean", "CPU ms p95", "CPU ms total", "peak MB max", "wall ms p50", "start ms mean"];
  table("usage", head.map((h, i) => (i === col ? h + (desc ? " ▼" : " ▲") : h)), rows.map((r) => r.map((v, i) => [v, i >= 2 ? "num" : ""])), "no task has been used yet");
  $("usage").querySelectorAll("th").forEach((th, i) => th.addEventListener("click", () => {
    usageSort = { col: i, desc: usageSort.col === i ? !usageSort.desc : true };
    usageTable(keys);
  }));
}
function chart(reqs) {
  const svg = $("chart"); svg.replaceChildren();
  const ns = "http://www.w3.org/2000/svg"; const last = reqs.slice(-100); const n = Math.max(1, last.length);
  const max = Math.max(1, ...last.map((r) => r.ms)); const w = 100 / Math.max(30, n);
  last.forEach((r, i) => {
    const h = Math.max(1, (Math.log1p(r.ms) / Math.log1p(max)) * 76);
    const rect = document.createElementNS(ns, "rect");
    rect.setAttribute("x", String(i * w)); rect.setAttribute("width", String(Math.max(0.2, w * 0.8)));
    rect.setAttribute("y", String(80 - h)); rect.setAttribute("height", String(h));
    rect.setAttribute("fill", r.outcome !== "ok" ? "#b3261e" : r.cold ? "#e0a100" : "#2f7de1");
    const title = document.createElementNS(ns, "title"); title.textContent = r.ms + " ms, " + r.image; rect.append(title);
    svg.append(rect);
  });
  $("chartnote").textContent = last.length + " requests, slowest " + max + " ms (log scale; red: failed, amber: cold)";
}
function render(stats, tasks, requests, usage) {
  $("state").textContent = stats.paused ? "paused" : stats.engine === "reachable" ? "serving" : "Docker engine unreachable";
  const r = tasks.reserved;
  const cap = $("capacity"); cap.replaceChildren(
    ...bar("CPU", r.cpu, stats.task_cpu, "cores"), ...bar("Memory", r.mem, stats.task_mem, "MB"), ...bar("GPUs", r.gpus.length, stats.task_gpu, "GPUs"));
  $("queue").textContent = stats.queued + " request(s) waiting in line";
  const now = Date.now();
  const mb = (b) => (b / 1048576).toFixed(1) + " MB";
  table("pulls", ["image", "layers done", "downloaded", "waiting", "for"], (tasks.pulls || []).map((p) => [
    [p.image], [p.layers_done + " of " + p.layers, "num"], [mb(p.bytes_done) + " of " + mb(p.bytes_total), "num"], [p.waiting + " request(s)", "num"],
    [Math.round((now - Date.parse(p.started)) / 1000) + " s", "num"]]), "no image is being pulled");
  table("tasks", ["image", "state", "cpu", "mem", "served", "in flight", "idle removal in", "network", "prewarmed"], tasks.tasks.map((t) => {
    const idle = t.state === "ready" && t.in_flight === 0 && !t.prewarmed ? Math.max(0, Math.round(tasks.idle_timeout_s - (now - Date.parse(t.last_used)) / 1000)) + " s" : "—";
    return [[t.image], [t.state], [t.cpu, "num"], [t.mem + " MB", "num"], [t.served, "num"], [t.in_flight, "num"], [idle, "num"], [t.network.name || "(starting)"], [t.prewarmed ? "yes" : ""]];
  }), "no task is running");
  const reqs = requests.requests;
  table("requests", ["time", "task", "outcome", "latency", "start"], reqs.slice(-20).reverse().map((q) => [
    [new Date(q.at).toLocaleTimeString()], [q.image], [q.outcome, q.outcome === "ok" ? "" : "bad"], [q.ms + " ms", "num"], [q.cold ? "cold" : "warm", q.cold ? "cold" : ""]]), "no request yet");
  chart(reqs);
  usageTable(usage.keys);
  $("updated").textContent = "updated " + new Date().toLocaleTimeString();
}
async function refresh() {
  try {
    const [s, t, r, u] = await Promise.all(["/stats", "/tasks", "/requests", "/usage"].map((u) => fetch(u, { cache: "no-store" }).then((x) => x.json())));
    render(s, t, r, u);
    $("error").style.display = "none";
  } catch (e) {
    $("error").textContent = "Cannot read the executor: " + e.message;
    $("error").style.display = "block";
  }
}
refresh();
setInterval(refresh, 1000);
`;

const HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>meca-executor</title><style>${STYLE}</style></head>
<body><header><h1>meca-executor</h1><span id="state">…</span><span id="updated"></span></header>
<div id="error"></div>
<main>
<section><h2>Capacity</h2><div class="bars" id="capacity"></div><p id="queue"></p></section>
<section><h2>Tasks</h2><table id="tasks"></table></section>
<section><h2>Image pulls</h2><table id="pulls"></table></section>
<section><h2>Recent requests</h2><svg id="chart" viewBox="0 0 100 80" preserveAspectRatio="none"></svg><p id="chartnote" class="empty"></p><table id="requests"></table></section>
<section><h2>Usage per task key</h2><table id="usage"></table></section>
</main><script>${SCRIPT}</script></body></html>`;

async function sha256(text: string): Promise<string> {
  const digest = new Uint8Array(
    await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)),
  );
  let bin = "";
  for (const b of digest) bin += String.fromCharCode(b);
  return btoa(bin);
}

let answer: Promise<Answer> | undefined;

/** The page and its headers; the policy allows exactly its own script and style, and GETs to its own origin. */
export function uiAnswer(): Promise<Answer> {
  answer ??= (async () => {
    const csp = [
      "default-src 'none'",
      `script-src 'sha256-${await sha256(SCRIPT)}'`,
      `style-src 'sha256-${await sha256(STYLE)}'`,
      "connect-src 'self'",
      "base-uri 'none'",
      "form-action 'none'",
      "frame-ancestors 'none'",
    ].join("; ");
    return {
      status: 200,
      body: HTML,
      headers: {
        "content-type": "text/html; charset=utf-8",
        "content-security-policy": csp,
        "x-content-type-options": "nosniff",
        "referrer-policy": "no-referrer",
        "cache-control": "no-store",
      },
    };
  })();
  return answer;
}
