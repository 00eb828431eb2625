// Reverie play: the page's whole client. It draws what the server sends and sends what the
// person does; there is no model logic here (see reverie/viewer/session.py for the protocol).
// One request is kept in flight: the next step is sent only after the last reply ("final"),
// so a slow server slows the page instead of queueing work.
"use strict";

const TARGET_FPS = 30; // steps per second asked of the server while running
const PLOT_POINTS = 200; // surprise values kept for the plot

// Everything the page knows, exposed for the browser tests as window.reverie.
const S = {
  ws: null, hello: null, size: 64, predN: 0, pending: 0, lastSend: 0, sentAt: [],
  keys: new Set(), running: true, planning: false, mode: "live",
  frames: 0, liveFrames: 0, dreamFrames: 0, planFrames: 0, plans: 0, errors: [],
  surprise: [], surpriseMax: 0, latencies: [], frameTimes: [], state: null, lastEvent: "",
  worlds: 0,
};
window.reverie = S;

const $ = (id) => document.getElementById(id);
const KEYS = {
  ArrowUp: "up", ArrowDown: "down", ArrowLeft: "left", ArrowRight: "right",
  w: "up", s: "down", a: "left", d: "right", W: "up", S: "down", A: "left", D: "right",
};

// ------------------------------------------------------------------------------ drawing
function drawRGB(canvas, b64, slot = 0) {
  // base64 raw RGB bytes (size x size x 3) -> the canvas at horizontal slot `slot`.
  if (!b64) return;
  const n = S.size, bytes = atob(b64), ctx = canvas.getContext("2d");
  const img = ctx.createImageData(n, n);
  for (let i = 0, j = 0; i < n * n; i++, j += 3) {
    img.data[4 * i] = bytes.charCodeAt(j);
    img.data[4 * i + 1] = bytes.charCodeAt(j + 1);
    img.data[4 * i + 2] = bytes.charCodeAt(j + 2);
    img.data[4 * i + 3] = 255;
  }
  ctx.putImageData(img, slot * n, 0);
}

function sizeCanvases() {
  const n = S.size;
  for (const id of ["real", "recon", "dream", "goal"]) { $(id).width = n; $(id).height = n; }
  $("pred").width = n * Math.max(1, S.predN); $("pred").height = n;
  $("imagined").width = n * Math.max(1, S.hello.plan_horizon); $("imagined").height = n;
}

function plotSurprise() {
  const c = $("surprise"), ctx = c.getContext("2d"), v = S.surprise;
  ctx.clearRect(0, 0, c.width, c.height);
  if (!v.length) return;
  const top = Math.max(1e-6, ...v) * 1.1, dx = c.width / (PLOT_POINTS - 1);
  ctx.strokeStyle = "#d33"; ctx.lineWidth = 2; ctx.beginPath();
  v.forEach((y, i) => {
    const px = i * dx, py = c.height - (y / top) * (c.height - 4) - 2;
    if (i === 0) ctx.moveTo(px, py); else ctx.lineTo(px, py);
  });
  ctx.stroke();
  ctx.fillStyle = "#666"; ctx.font = "11px sans-serif";
  ctx.fillText(`max ${top.toPrecision(3)}`, 4, 12);
}

function median(xs) {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function showStats(msg) {
  const now = performance.now();
  S.frameTimes.push(now);
  while (S.frameTimes.length && now - S.frameTimes[0] > 1000) S.frameTimes.shift();
  $("fps").textContent = S.frameTimes.length.toString();
  $("latency").textContent = S.latencies.length ? median(S.latencies).toFixed(1) : "–";
  if (msg.server_ms != null) $("serverMs").textContent = msg.server_ms.toFixed(1);
  $("step").textContent = msg.step;
  $("modeLabel").textContent = msg.mode;
  if (msg.state) $("state").textContent = msg.state.slice(0, 4).map((x) => x.toFixed(1)).join(", ");
}

// ----------------------------------------------------------------------------- messages
function onFrame(msg) {
  S.frames++;
  if (msg.mode === "dream" && msg.dream) S.dreamFrames++;
  if (msg.mode === "live" && msg.real) S.liveFrames++;
  if (msg.source === "plan") S.planFrames++;
  S.state = msg.state;
  setMode(msg.mode);
  drawRGB($("real"), msg.real);
  drawRGB($("recon"), msg.recon);
  drawRGB($("dream"), msg.dream);
  (msg.pred || []).forEach((p, i) => drawRGB($("pred"), p, i));
  if (msg.surprise != null) {
    S.surprise.push(msg.surprise);
    if (S.surprise.length > PLOT_POINTS) S.surprise.shift();
    S.surpriseMax = Math.max(S.surpriseMax, msg.surprise);
    $("surpriseValue").textContent = msg.surprise.toPrecision(3);
    plotSurprise();
  }
  if (msg.event) { S.lastEvent = msg.event; $("event").textContent = msg.event; }
  showStats(msg);
}

function onMessage(ev) {
  const msg = JSON.parse(ev.data);
  if (msg.final) {
    S.pending = Math.max(0, S.pending - 1);
    const sent = S.sentAt.shift();
    if (sent !== undefined && msg.type === "frame") {
      S.latencies.push(performance.now() - sent);
      if (S.latencies.length > 60) S.latencies.shift();
    }
  }
  if (msg.type === "hello") {
    S.hello = msg; S.size = msg.image_size; S.predN = msg.pred_horizon;
    $("plannerRow").hidden = !(msg.planners || []).includes("policy");
    sizeCanvases();
    status(`${msg.env} · checkpoint step ${msg.checkpoint_step}` +
      (msg.decoder_psnr != null ? ` · decoder ${msg.decoder_psnr.toFixed(1)} dB` : ""));
    $("worldGroup").hidden = !msg.worlds;
    if (msg.world) showWorld(msg.world);
  } else if (msg.type === "world") {
    showWorld(msg);
    S.worlds++;
  } else if (msg.type === "frame") {
    onFrame(msg);
  } else if (msg.type === "plan") {
    S.plans++;
    if (msg.goal) drawRGB($("goal"), msg.goal);
    (msg.imagined || []).forEach((p, i) => drawRGB($("imagined"), p, i));
    $("planInfo").textContent =
      `${msg.planner || "cem"} replan ${msg.replan}: ${msg.plan_ms.toFixed(1)} ms`;
  } else if (msg.type === "plan_done") {
    $("planInfo").textContent =
      `${msg.success ? "reached the goal" : "stopped"} after ${msg.steps} steps ` +
      `(${msg.replans} replans, distance ${msg.distance.toFixed(1)})`;
  } else if (msg.type === "error") {
    S.errors.push(msg.message);
    status(`error: ${msg.message}`, true);
  }
  if (msg.final && S.planning && (msg.type === "plan_done" || msg.type === "error")) {
    S.planning = false;
  }
}

// The parsed world: its spec (one line per object), the words not understood, and a badge
// when values were clamped into the family's training ranges.
function showWorld(w) {
  $("worldSpec").textContent = w.lines.join("\n");
  $("ignored").textContent = w.ignored.length
    ? "ignored: " + w.ignored.map((x) => `'${x}'`).join(", ") : "";
  $("rangeBadge").hidden = !w.out_of_range;
  $("rangeBadge").title = w.warnings.join("\n");
  if (w.spec.prompt && !$("prompt").value) $("prompt").value = w.spec.prompt;
}

function status(text, bad = false) {
  const el = $("status");
  el.textContent = text;
  el.classList.toggle("bad", bad);
}

function send(msg) {
  if (!S.ws || S.ws.readyState !== WebSocket.OPEN) return false;
  S.ws.send(JSON.stringify(msg));
  S.pending++;
  S.sentAt.push(performance.now());
  S.lastSend = performance.now();
  return true;
}

function setMode(mode) {
  S.mode = mode;
  for (const b of document.querySelectorAll("button.mode")) {
    b.classList.toggle("active", b.dataset.mode === mode);
  }
}

// ---------------------------------------------------------------------------- the loop
function tick() {
  requestAnimationFrame(tick);
  if (!S.hello || S.pending > 0 || S.planning) return;
  if (!S.running && S.keys.size === 0) return;
  if (performance.now() - S.lastSend < 1000 / TARGET_FPS) return;
  send({ type: "action", keys: [...S.keys] });
}

function connect() {
  const proto = location.protocol === "https:" ? "wss" : "ws";
  S.ws = new WebSocket(`${proto}://${location.host}/ws`);
  S.ws.onmessage = onMessage;
  S.ws.onclose = () => { status("disconnected (reload to reconnect)", true); S.hello = null; };
  S.ws.onerror = () => status("connection error", true);
}

// ----------------------------------------------------------------------------- inputs
window.addEventListener("keydown", (e) => {
  if (e.target instanceof HTMLInputElement) return; // typing a prompt does not drive
  const k = KEYS[e.key];
  if (!k) return;
  e.preventDefault();
  S.keys.add(k);
});
window.addEventListener("keyup", (e) => { const k = KEYS[e.key]; if (k) S.keys.delete(k); });
window.addEventListener("blur", () => S.keys.clear());

for (const b of document.querySelectorAll("button.key")) {
  const k = b.dataset.key;
  b.addEventListener("pointerdown", () => S.keys.add(k));
  for (const ev of ["pointerup", "pointerleave", "pointercancel"]) {
    b.addEventListener(ev, () => S.keys.delete(k));
  }
}
for (const b of document.querySelectorAll("button.mode")) {
  b.addEventListener("click", () => send({ type: "mode", mode: b.dataset.mode }));
}
for (const b of document.querySelectorAll("button.perturb")) {
  b.addEventListener("click", () => send({ type: "perturb", kind: b.dataset.kind }));
}
$("worldForm").addEventListener("submit", (e) => {
  e.preventDefault();
  send({ type: "world", prompt: $("prompt").value });
});
$("resync").addEventListener("click", () => send({ type: "resync" }));
$("reset").addEventListener("click", () => send({ type: "reset" }));
$("running").addEventListener("change", (e) => { S.running = e.target.checked; });
$("randomGoal").addEventListener("click", () => {
  if (send({ type: "plan", goal_image: "random", planner: $("planner").value })) S.planning = true;
});
$("real").addEventListener("click", (e) => {
  const r = e.target.getBoundingClientRect();
  const x = Math.min(1, Math.max(0, (e.clientX - r.left) / r.width));
  const y = Math.min(1, Math.max(0, (e.clientY - r.top) / r.height));
  if (send({ type: "plan", goal: { x, y }, planner: $("planner").value })) S.planning = true;
});

connect();
requestAnimationFrame(tick);
