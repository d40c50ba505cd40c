// The dashboard: one page, no framework, fed by the coordinator's /feed WebSocket (protobuf frames).
import { decodeEnvelope, encodeEnvelope, piStateName, v1 } from "@pifleet/proto/codec";
import { readingOf } from "@pifleet/proto/sample";

interface Tile {
  el: HTMLElement;
  status?: v1.PiStatus;
  history: number[];
}

const HISTORY = 60;
const MAX_EVENTS = 300;
/** The recovery path, in order: the summary counts states in this order, not alphabetically. */
const STATE_ORDER = ["healthy", "suspect", "down", "drained", "power-cycling", "booting", "rebuilding", "quarantined", "credentials-refused", "unknown"];
const $ = <T extends HTMLElement>(sel: string) => document.querySelector(sel) as T;
const tiles = new Map<string, Tile>();
let selected: string | undefined;
/** The shelf whose grid is shown, in a fleet of several shelves (undefined: one shelf, every tile). */
let shelf: string | undefined;
let shelfNames: string[] = [];
let ws: WebSocket | undefined;
let seq = 0;
let retry = 500;

const params = new URLSearchParams(location.hash.slice(1));
const creds = {
  name: params.get("name") ?? sessionStorage.getItem("pifleet.name") ?? "",
  token: params.get("token") ?? sessionStorage.getItem("pifleet.token") ?? "",
  operator: (params.get("role") ?? sessionStorage.getItem("pifleet.role")) === "operator",
};
if (params.has("token")) history.replaceState(null, "", location.pathname); // keep the token out of the address bar

function send(body: Omit<v1.Envelope.$Properties, "version" | "seq">): void {
  ws?.send(encodeEnvelope({ seq: ++seq, ...body }));
}

function connect(): void {
  if (!creds.token) {
    showLogin();
    return;
  }
  sessionStorage.setItem("pifleet.name", creds.name);
  sessionStorage.setItem("pifleet.token", creds.token);
  sessionStorage.setItem("pifleet.role", creds.operator ? "operator" : "watcher");
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/feed`;
  const socket = new WebSocket(url);
  ws = socket;
  seq = 0;
  socket.binaryType = "arraybuffer";
  socket.onmessage = (ev) => {
    let env;
    try {
      env = decodeEnvelope(new Uint8Array(ev.data as ArrayBuffer), 16 * 1024 * 1024);
    } catch (err) {
      addEvent({ timeMs: Date.now(), kind: "client", subject: "feed", message: String(err) } as v1.FleetEvent);
      return;
    }
    switch (env.body) {
      case "challenge":
        send({
          hello: {
            role: creds.operator ? v1.Role.ROLE_OPERATOR : v1.Role.ROLE_WATCHER,
            identity: creds.name,
            nonce: env.challenge!.nonce,
            token: creds.token,
            agentVersion: "dashboard",
          },
        });
        break;
      case "helloAck":
        retry = 500;
        setConn(true);
        break;
      case "snapshot":
        onSnapshot(env.snapshot as v1.FeedSnapshot);
        break;
      case "delta":
        onDelta(env.delta as v1.FeedDelta);
        break;
      case "operatorReply": {
        const r = env.operatorReply as v1.OperatorReply;
        $("#action-result").textContent = `${r.ok ? "✓" : "✗"} ${r.message}`;
        break;
      }
      case "error": {
        const e = env.error as v1.ErrorFrame;
        addEvent({ timeMs: Date.now(), kind: "refused", subject: e.frame, message: `${e.code}: ${e.message}` } as v1.FleetEvent);
        if (e.code === "unauthenticated" || e.code === "forbidden") {
          creds.token = "";
          sessionStorage.removeItem("pifleet.token");
        }
        break;
      }
    }
  };
  socket.onclose = () => {
    setConn(false);
    if (ws !== socket) return;
    setTimeout(connect, retry);
    retry = Math.min(retry * 2, 10_000);
  };
}

function setConn(on: boolean): void {
  const el = $("#conn");
  el.className = `conn ${on ? "on" : "off"}`;
  el.textContent = on ? (creds.operator ? `operator ${creds.name}` : `watching as ${creds.name}`) : "disconnected";
  for (const b of document.querySelectorAll<HTMLButtonElement>("#actions button")) b.disabled = !on || !creds.operator || !selected;
}

function onSnapshot(s: v1.FeedSnapshot): void {
  $("#fleet-name").textContent = s.fleet;
  const grid = $("#grid");
  grid.replaceChildren();
  tiles.clear();
  for (const p of s.pis) upsert(p as v1.PiStatus);
  $("#events").replaceChildren();
  for (const e of s.events) addEvent(e as v1.FleetEvent);
  if (s.fleetStatus) onFleet(s.fleetStatus as v1.FleetStatus);
  renderSummary();
}

/** The fleet overview: one row per shelf with its counts; clicking a row shows that shelf's grid. */
function renderShelves(list: v1.ShelfStatus[]): void {
  const box = $("#shelves");
  box.hidden = list.length < 2;
  shelfNames = list.map((s) => s.name);
  if (list.length < 2) {
    if (shelf !== undefined) chooseShelf(undefined);
    return;
  }
  if (shelf === undefined || !shelfNames.includes(shelf)) chooseShelf(shelfNames[0]);
  const body = box.querySelector("tbody")!;
  body.replaceChildren();
  for (const s of list) {
    const tr = document.createElement("tr");
    tr.dataset.shelf = s.name;
    if (s.name === shelf) tr.className = "chosen";
    const recovery = s.alarm ? `ALARM: ${s.alarmReason}` : s.pausedReason ? `paused: ${s.pausedReason}` : "running";
    for (const [field, v] of [["name", s.name], ["total", s.pisTotal], ["healthy", s.healthy], ["suspect", s.suspect], ["down", s.down], ["other", s.other], ["recovery", recovery]] as const) {
      const td = document.createElement("td");
      td.dataset.field = field;
      td.textContent = String(v);
      if (field === "recovery") td.className = s.alarm ? "alarm" : s.pausedReason ? "paused" : "";
      tr.append(td);
    }
    tr.addEventListener("click", () => chooseShelf(s.name));
    body.append(tr);
  }
}

function chooseShelf(name: string | undefined): void {
  shelf = name;
  for (const tr of document.querySelectorAll<HTMLElement>("#shelves tbody tr")) tr.classList.toggle("chosen", tr.dataset.shelf === name);
  for (const t of tiles.values()) t.el.hidden = !onChosenShelf(t.status);
  renderSummary();
}

function onChosenShelf(p: v1.PiStatus | undefined): boolean {
  return shelf === undefined || p?.shelf === shelf;
}

function onDelta(d: v1.FeedDelta): void {
  for (const p of d.pis) upsert(p as v1.PiStatus);
  for (const e of d.events) addEvent(e as v1.FleetEvent);
  if (d.fleetStatus) onFleet(d.fleetStatus as v1.FleetStatus);
  renderSummary();
}

function onFleet(f: v1.FleetStatus): void {
  renderShelves(f.shelves as v1.ShelfStatus[]);
  const alarm = $("#alarm");
  alarm.hidden = !f.alarm;
  alarm.textContent = f.alarm ? `FLEET ALARM — recovery paused: ${f.alarmReason}` : "";
  $("#summary").dataset.fleet = `fileserver ${f.fileserverHealthy ? "healthy" : "UNHEALTHY"} · ${f.activeRemediations} remediations`;
  // Taken out of the fleet by a reload of the fleet file: their tiles go.
  for (const name of f.pisRemoved ?? []) {
    tiles.get(name)?.el.remove();
    tiles.delete(name);
    if (selected === name) selected = undefined;
  }
}

function upsert(p: v1.PiStatus): void {
  let tile = tiles.get(p.name);
  if (!tile) {
    const el = document.createElement("div");
    el.className = "tile unknown";
    el.dataset.pi = p.name;
    el.setAttribute("role", "button");
    el.addEventListener("click", () => select(p.name));
    $("#grid").append(el);
    tile = { el, history: [] };
    tiles.set(p.name, tile);
  }
  const prevTime = tile.status?.lastSample?.timeMs;
  tile.status = p;
  const r = readingOf(p);
  if (r && r.timeMs !== prevTime && r.load) {
    tile.history.push(r.load.one);
    if (tile.history.length > HISTORY) tile.history.shift();
  }
  const state = piStateName(p.state);
  tile.el.className = `tile ${state}${p.held ? " held" : ""}${selected === p.name ? " selected" : ""}`;
  tile.el.dataset.state = state;
  tile.el.dataset.shelf = p.shelf;
  tile.el.hidden = !onChosenShelf(p);
  tile.el.innerHTML = `<div class="n"><b></b><span></span></div><div class="s"></div><div class="m"></div>${spark(tile.history, 80, 16)}`;
  (tile.el.querySelector(".n b") as HTMLElement).textContent = p.name;
  (tile.el.querySelector(".n span") as HTMLElement).textContent = `:${p.port}`;
  (tile.el.querySelector(".s") as HTMLElement).textContent = state;
  (tile.el.querySelector(".m") as HTMLElement).textContent = tileLine(p);
  tile.el.title = `${p.name} (port ${p.port}): ${state}${p.held ? ", held by an operator" : ""}${p.reason ? ` — ${p.reason}` : ""}`;
  if (selected === p.name) renderDetail();
}

/**
 * The tile's one line of figures, short enough for a tile of a full shelf. Healthy: load and the
 * HTTP probe's latency. Otherwise how long it has been in this state (what an operator watches
 * during a recovery) and what is wrong; the tooltip and the detail panel give the full reason.
 */
function tileLine(p: v1.PiStatus): string {
  const r = readingOf(p);
  const load = r?.load ? `ld ${short(r.load.one)}` : "";
  if (piStateName(p.state) === "healthy") {
    if (!r) return "no report";
    const ms = r.probe?.ok ? Number(r.probe.latencyMs ?? 0) : undefined;
    return ms === undefined ? load : `${load} · ${ms < 1000 ? `${ms}ms` : `${(ms / 1000).toFixed(1)}s`}`;
  }
  const age = p.stateSinceMs ? `${ago(Number(p.stateSinceMs))} · ` : "";
  let what = load;
  if (piStateName(p.state) === "credentials-refused") what = "key refused";
  else if (!r) what = "no report";
  else if (!p.connected) what = "silent";
  else if (r.rootfs?.stalled) what = "nfs ✗";
  else if (r.apache && !r.apache.reachable) what = "www ✗";
  else if (r.probe && !r.probe.ok) what = "http ✗";
  return `${age}${what}`;
}

/** Bytes over a span as a rate: "1.2 MB/s". */
function rate(bytes: number, spanMs: number): string {
  const perSec = (bytes * 1000) / spanMs;
  return perSec >= 1e6 ? `${(perSec / 1e6).toFixed(1)} MB/s` : `${(perSec / 1e3).toFixed(0)} kB/s`;
}

/** Three significant figures at most: 0.42, 8.94, 26.8, 113. */
function short(n: number): string {
  return n < 10 ? n.toFixed(2) : n < 100 ? n.toFixed(1) : n.toFixed(0);
}

function ago(ms: number): string {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  return s < 120 ? `${s}s` : s < 7200 ? `${Math.round(s / 60)}m` : `${Math.round(s / 3600)}h`;
}

function spark(values: number[], w: number, h: number): string {
  if (values.length < 2) return `<svg viewBox="0 0 ${w} ${h}"></svg>`;
  const max = Math.max(1, ...values);
  const pts = values.map((v, i) => `${((i / (HISTORY - 1)) * w).toFixed(1)},${(h - (v / max) * (h - 1)).toFixed(1)}`).join(" ");
  return `<svg viewBox="0 0 ${w} ${h}" preserveAspectRatio="none"><polyline points="${pts}"/></svg>`;
}

function select(name: string): void {
  selected = name;
  for (const t of tiles.values()) t.el.classList.toggle("selected", t.el.dataset.pi === name);
  $("#action-result").textContent = "";
  renderDetail();
  setConn(ws?.readyState === WebSocket.OPEN);
}

function renderDetail(): void {
  const t = selected ? tiles.get(selected) : undefined;
  if (!t?.status) return;
  const p = t.status;
  const r = readingOf(p);
  $("#detail-title").textContent = `${p.name} (port ${p.port})`;
  const rows: [string, string][] = [
    ["state", `${piStateName(p.state)}${p.held ? " (held by operator)" : ""}`],
    ["reason", p.reason || "–"],
    ["since", p.stateSinceMs ? new Date(p.stateSinceMs).toLocaleTimeString() : "–"],
    ["last seen", p.lastSeenMs ? `${((Date.now() - p.lastSeenMs) / 1000).toFixed(1)} s ago` : "never"],
    ["attempts", String(p.attempts)],
    ["load", r?.load ? `${r.load.one.toFixed(2)} ${r.load.five.toFixed(2)} ${r.load.fifteen.toFixed(2)}` : "–"],
    ["cpu", r?.cpuPercent != null ? `${r.cpuPercent.toFixed(1)} %` : "–"],
    ["memory", r?.memTotalBytes ? `${(((r.memTotalBytes - (r.memAvailableBytes ?? 0)) / r.memTotalBytes) * 100).toFixed(0)} % used` : "–"],
    ["temperature", r?.temperatureC != null ? `${r.temperatureC.toFixed(1)} °C` : "–"],
    ["apache", r?.apache ? (r.apache.reachable ? `${r.apache.busyWorkers} busy / ${r.apache.idleWorkers} idle${r.apache.requestsPerSec != null ? `, ${r.apache.requestsPerSec.toFixed(2)} req/s` : ""}` : `unreachable: ${r.apache.error}`) : "–"],
    ["probe", r?.probe ? (r.probe.ok ? `HTTP ${r.probe.status} in ${r.probe.latencyMs} ms` : `failed: ${r.probe.error || r.probe.status}`) : "–"],
    ["root fs", r?.rootfs ? (r.rootfs.stalled ? "STALLED" : `${r.rootfs.latencyMs} ms`) : "–"],
    ["network", r?.net.length && r.spanMs ? r.net.map((n) => `${n.interface} ↓${rate(n.rxBytes, r.spanMs)} ↑${rate(n.txBytes, r.spanMs)}`).join(", ") : "–"],
    ["agent", r?.agentVersion ? `${r.agentVersion} (Node ${r.nodeVersion}, ${r.arch})` : "–"],
  ];
  const dl = $("#detail-body");
  dl.replaceChildren();
  for (const [k, v] of rows) {
    const dt = document.createElement("dt");
    dt.textContent = k;
    const dd = document.createElement("dd");
    dd.textContent = v;
    dl.append(dt, dd);
  }
  $("#detail-chart").innerHTML = spark(t.history, 300, 60).replace(/^<svg[^>]*>|<\/svg>$/g, "");
}

function addEvent(e: v1.FleetEvent): void {
  const li = document.createElement("li");
  li.dataset.kind = e.kind;
  li.dataset.subject = e.subject;
  const time = document.createElement("span");
  time.className = "t";
  time.textContent = new Date(Number(e.timeMs)).toLocaleTimeString();
  const kind = document.createElement("span");
  kind.className = "k";
  kind.textContent = e.kind;
  li.append(time, kind, `${e.subject}: ${e.message}${e.actor ? ` (${e.actor})` : ""}`);
  const list = $("#events");
  list.prepend(li);
  while (list.children.length > MAX_EVENTS) list.lastElementChild?.remove();
}

function renderSummary(): void {
  const counts = new Map<string, number>();
  for (const t of tiles.values()) {
    if (!onChosenShelf(t.status)) continue;
    const s = t.status ? piStateName(t.status.state) : "unknown";
    counts.set(s, (counts.get(s) ?? 0) + 1);
  }
  const summary = $("#summary");
  summary.replaceChildren();
  const rank = (s: string) => (STATE_ORDER.includes(s) ? STATE_ORDER.indexOf(s) : STATE_ORDER.length);
  for (const [state, n] of [...counts].sort((a, b) => rank(a[0]) - rank(b[0]))) {
    const span = document.createElement("span");
    const dot = document.createElement("i");
    dot.className = `dot ${state}`;
    span.append(dot, `${state} ${n}`);
    span.dataset.state = state;
    summary.append(span);
  }
  if (shelf !== undefined) {
    const span = document.createElement("span");
    span.id = "summary-shelf";
    span.textContent = `shelf ${shelf}`;
    summary.prepend(span);
  }
  if (summary.dataset.fleet) {
    const span = document.createElement("span");
    span.textContent = summary.dataset.fleet;
    summary.append(span);
  }
}

function showLogin(): void {
  const form = $("#login") as HTMLFormElement;
  form.hidden = false;
  form.onsubmit = (ev) => {
    ev.preventDefault();
    const data = new FormData(form);
    creds.name = String(data.get("name"));
    creds.token = String(data.get("token"));
    creds.operator = data.get("operator") === "on";
    form.hidden = true;
    connect();
  };
}

for (const b of document.querySelectorAll<HTMLButtonElement>("#actions button")) {
  b.disabled = true;
  b.addEventListener("click", () => {
    if (!selected) return;
    const action = b.dataset.action!;
    if (action === "cycle" && !confirm(`Power-cycle ${selected}? This cuts its power.`)) return;
    if (action === "rebuild" && !confirm(`Rebuild the root filesystem of ${selected}? This cuts its power and replaces its root with the golden image.`)) return;
    $("#action-result").textContent = `${action} ${selected}…`;
    send({ operatorRequest: { id: requestId(), action, pi: selected, reason: "dashboard" } });
  });
}

/** crypto.randomUUID exists only in secure contexts: a dashboard opened over plain http from another machine has none. */
function requestId(): string {
  if (typeof crypto.randomUUID === "function") return crypto.randomUUID();
  return [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, "0")).join("");
}

setInterval(() => {
  for (const t of tiles.values()) {
    // Only tiles whose line shows a time change from second to second.
    if (t.status && piStateName(t.status.state) !== "healthy") (t.el.querySelector(".m") as HTMLElement).textContent = tileLine(t.status);
  }
  if (selected) renderDetail();
}, 1000);
connect();
