// Runwright run viewer: pick an app's run, watch its events live, cancel it, and approve or
// reject a tool call the run waits on (approval.requested; POST .../resume with the decision).
//
// Auth: the bearer token is held in this module's memory only (never in a URL, a cookie
// or browser storage). Actions (list runs, cancel) send it as `Authorization` with fetch;
// no cookie is involved, so cross-site requests carry no credential and need no CSRF
// token. EventSource cannot send headers: a stream opens with a ticket from
// POST .../stream-ticket (read-only, this run only, short-lived). EventSource reconnects by
// itself with Last-Event-ID while the ticket is valid; once it is refused (expired), the
// page asks for a new ticket and resumes with ?after=<last seq>. Events are rendered once
// each, by seq. Everything from the server is inserted as text, never as HTML.
"use strict";

const state = {
  token: "",
  tenant: "",
  appId: "",
  runId: "",
  lastSeq: 0,
  source: null,
  retries: 0, // failed (re)opens in a row, for the back-off
  finished: false,
  spans: new Map(), // span_id -> tool card
  text: null, // the assistant block receiving deltas
};

const $ = (id) => document.getElementById(id);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const TERMINAL = new Set(["run.completed", "run.failed"]);
const PATCH_KEYS = ["patch", "diff", "unified_diff", "unifiedDiff", "patch_text", "patchText"];
const MAX_SHOWN = 4000; // characters of a tool's input/output shown

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function say(text) {
  const box = $("message");
  box.textContent = text || "";
  box.hidden = !text;
}

function detailText(detail) {
  if (Array.isArray(detail)) {
    return detail.map((d) => (d && d.msg ? `${(d.loc || []).join(".")}: ${d.msg}` : String(d))).join("; ");
  }
  if (detail && typeof detail === "object") {
    return detail.message ? `${detail.code || ""} ${detail.message}`.trim() : JSON.stringify(detail);
  }
  return String(detail);
}

async function api(method, path, json) {
  const headers = { Authorization: `Bearer ${state.token}` };
  if (state.tenant) headers["X-Tenant-ID"] = state.tenant;
  const init = { method, headers, cache: "no-store", credentials: "omit" };
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  }
  const response = await fetch(path, init);
  let body = null;
  try {
    body = await response.json();
  } catch (_) {
    body = null;
  }
  if (!response.ok) {
    const detail = body && "detail" in body ? detailText(body.detail) : response.statusText;
    throw new Error(`${response.status}: ${detail}`);
  }
  return body;
}

function runsPath(suffix = "") {
  return `/admin/apps/${state.appId}/coding-agent/runs${suffix}`;
}

function setHash() {
  const params = new URLSearchParams();
  params.set("app", state.appId);
  if (state.tenant) params.set("tenant", state.tenant);
  if (state.runId) params.set("run", state.runId);
  history.replaceState(null, "", `#${params}`);
}

function setStatus(status) {
  const badge = $("run-status");
  badge.textContent = status;
  badge.className = `status ${status}`;
  $("cancel").disabled = ["completed", "failed", "cancelled"].includes(status);
}

function setConnection(text) {
  $("connection").textContent = text;
}

// --- runs list --------------------------------------------------------------------------

async function loadRuns() {
  const runs = await api("GET", `${runsPath()}?limit=25`);
  const list = $("runs");
  list.replaceChildren();
  for (const run of runs) {
    const item = el("li");
    item.dataset.runId = run.run_id;
    item.append(el("span", `status ${run.status}`, run.status), el("code", "", run.run_id),
      el("span", "muted", `${run.execution_engine} · ${new Date(run.created_at).toLocaleString()}`));
    if (run.run_id === state.runId) item.classList.add("selected");
    item.addEventListener("click", () => watch(run.run_id).catch((e) => say(e.message)));
    list.append(item);
  }
  if (!runs.length) list.append(el("li", "muted", "No runs yet."));
  $("runs-panel").hidden = false;
}

// --- watching a run ---------------------------------------------------------------------

function closeStream() {
  if (state.source) state.source.close();
  state.source = null;
}

async function watch(runId) {
  closeStream();
  Object.assign(state, { runId, lastSeq: 0, finished: false, text: null, retries: 0 });
  state.spans.clear();
  $("transcript").replaceChildren();
  $("events").replaceChildren();
  hideActions();
  $("event-count").textContent = "0";
  $("run-id").textContent = runId;
  $("run-panel").hidden = false;
  for (const item of $("runs").children) item.classList.toggle("selected", item.dataset.runId === runId);
  setHash();
  const run = await api("GET", runsPath(`/${runId}`));
  showRun(run);
  await openStream();
}

function showRun(run) {
  setStatus(run.status);
  if (run.status !== "paused") hideActions();
  const parts = [`engine ${run.execution_engine}`, `created ${new Date(run.created_at).toLocaleString()}`];
  if (run.result_revision_id) parts.push(`revision ${run.result_revision_id}`);
  if (run.error) parts.push(`error: ${run.error}`);
  $("run-meta").textContent = parts.join(" · ");
}

async function openStream() {
  if (state.finished) return;
  const runId = state.runId;
  const issued = await api("POST", runsPath(`/${runId}/stream-ticket`));
  if (runId !== state.runId || state.finished) return; // another run was picked meanwhile
  const url = state.lastSeq > 0 ? `${issued.stream_url}&after=${state.lastSeq}` : issued.stream_url;
  const source = new EventSource(url);
  state.source = source;
  setConnection("connecting…");
  source.onopen = () => {
    state.retries = 0;
    setConnection("live");
  };
  source.onmessage = (message) => {
    if (source !== state.source) return;
    handle(JSON.parse(message.data));
  };
  source.onerror = () => {
    if (source !== state.source || state.finished) return;
    if (source.readyState === EventSource.CLOSED) {
      // Refused (the ticket expired) or given up: a new ticket, resuming after the last seq.
      state.source = null;
      reopenLater(runId);
    } else {
      setConnection("reconnecting…"); // EventSource retries itself with Last-Event-ID
    }
  };
}

function reopenLater(runId) {
  const wait = Math.min(1000 * 2 ** state.retries, 10000);
  state.retries += 1;
  setConnection(`reconnecting in ${Math.round(wait / 1000)} s…`);
  setTimeout(() => {
    if (runId !== state.runId || state.finished || state.source) return;
    openStream().catch(() => reopenLater(runId));
  }, wait);
}

function handle(event) {
  if (event.seq <= state.lastSeq) return; // already shown
  state.lastSeq = event.seq;
  const row = el("li", "", `${event.event}  ${new Date(event.ts).toLocaleTimeString()}`);
  row.value = event.seq;
  row.dataset.seq = String(event.seq);
  row.dataset.event = event.event;
  $("events").append(row);
  $("event-count").textContent = String($("events").children.length);
  if (!TERMINAL.has(event.event) && event.event !== "run.accepted" && $("run-status").textContent === "queued") {
    setStatus("running");
  }
  // A pending approval is decided once anything but the pause's own end follows it.
  if (event.event !== "approval.requested" && event.event !== "run.completed") hideActions();
  const render = renderers[event.event] || renderOther;
  render(event);
  if (TERMINAL.has(event.event)) {
    state.finished = true;
    closeStream();
    setConnection("ended");
    api("GET", runsPath(`/${state.runId}`)).then(showRun, (e) => say(e.message));
    loadRuns().catch((e) => say(e.message));
  }
}

// --- renderers, one per event type --------------------------------------------------------

function block(className, label) {
  const node = el("div", `block ${className}`);
  if (label) node.append(el("div", "label", label));
  $("transcript").append(node);
  state.text = null;
  return node;
}

function shown(value) {
  const text = typeof value === "string" ? value : JSON.stringify(value, null, 2);
  return text.length > MAX_SHOWN ? `${text.slice(0, MAX_SHOWN)}\n… (${text.length} characters)` : text;
}

function patchText(input) {
  if (!input || typeof input !== "object") return null;
  for (const key of PATCH_KEYS) if (typeof input[key] === "string") return input[key];
  return null;
}

function diffView(text) {
  const pre = el("pre", "diff");
  for (const line of text.split("\n")) {
    let kind = "";
    if (line.startsWith("+++") || line.startsWith("---") || line.startsWith("***")) kind = "file";
    else if (line.startsWith("@@")) kind = "hunk";
    else if (line.startsWith("+")) kind = "add";
    else if (line.startsWith("-")) kind = "del";
    pre.append(el("span", kind, line || " "));
  }
  return pre;
}

const renderers = {
  "run.accepted": () => {},
  "plan.updated": (event) => {
    const p = event.payload || {};
    const line = typeof p.summary === "string" ? p.summary
      : ["node", "state", "iteration"].filter((k) => k in p).map((k) => `${k} ${p[k]}`).join(" · ");
    const node = block("milestone plan", "plan");
    node.append(line ? el("div", "small", line) : el("pre", "", shown(p)));
  },
  "assistant.delta": (event) => {
    if (!state.text) {
      const node = block("assistant", "assistant");
      state.text = el("div", "text");
      node.append(state.text);
    }
    state.text.textContent += event.payload.content || "";
  },
  "tool.started": (event) => {
    const { tool, span_id: spanId, input } = event.payload;
    const node = block("tool", "tool call");
    const head = el("div", "head");
    head.append(el("code", "", tool), el("span", "state", "running…"));
    node.append(head);
    const patch = patchText(input);
    node.append(patch !== null ? diffView(patch) : el("pre", "", shown(input ?? {})));
    state.spans.set(spanId, node);
  },
  "tool.completed": (event) => finishTool(event, "ok"),
  "tool.failed": (event) => finishTool(event, "failed"),
  "revision.created": (event) => {
    const p = event.payload;
    block("milestone", "revision").append(el("div", "", `Revision ${p.revision_id} · ${p.file_count} files · entry ${p.entry_file}`));
  },
  "checkpoint.created": (event) => {
    block("milestone", "checkpoint").append(el("div", "", `Checkpoint ${event.payload.checkpoint_id}`));
  },
  "run.completed": (event) => finalBlock(event, event.payload.status || "completed"),
  "run.failed": (event) => finalBlock(event, "failed"),
  "approval.requested": (event) => {
    const { tool, arguments: args, request_id: requestId } = event.payload;
    const node = block("tool approval", "waiting for approval");
    const head = el("div", "head");
    head.append(el("code", "", tool), el("span", "state", "needs a decision"));
    node.append(head);
    const patch = patchText(args);
    node.append(patch !== null ? diffView(patch) : el("pre", "", shown(args ?? {})));
    showActions(requestId, tool);
  },
};

// --- approvals ----------------------------------------------------------------------------

function hideActions() {
  const box = $("actions");
  box.replaceChildren();
  box.hidden = true;
  box.dataset.requestId = "";
}

function showActions(requestId, tool) {
  const box = $("actions");
  box.replaceChildren();
  box.dataset.requestId = requestId;
  const reason = el("input", "reason");
  reason.id = "approval-message";
  reason.type = "text";
  reason.placeholder = "Reason (told to the model when you reject)";
  const approve = el("button", "", "Approve");
  approve.id = "approve";
  approve.type = "button";
  const reject = el("button", "danger", "Reject");
  reject.id = "reject";
  reject.type = "button";
  approve.addEventListener("click", () => decide(requestId, "approve"));
  reject.addEventListener("click", () => decide(requestId, "reject"));
  box.append(el("span", "small", `The run waits for a decision on ${tool}.`), reason, approve, reject);
  box.hidden = false;
}

function decide(requestId, decision) {
  const approval = { request_id: requestId, decision };
  const message = $("approval-message").value.trim();
  if (message) approval.message = message;
  for (const id of ["approve", "reject"]) $(id).disabled = true;
  api("POST", runsPath(`/${state.runId}/resume`), { approval })
    .then((run) => {
      hideActions();
      showRun(run);
      state.finished = false; // the paused stream ended: follow the run on after its last seq
      return openStream();
    })
    .catch((e) => {
      say(e.message);
      for (const id of ["approve", "reject"]) $(id).disabled = false;
    });
}

function finishTool(event, outcome) {
  const { tool, span_id: spanId, output } = event.payload;
  let node = state.spans.get(spanId);
  if (!node) {
    node = block("tool", "tool call");
    const head = el("div", "head");
    head.append(el("code", "", tool), el("span", "state"));
    node.append(head);
  }
  const mark = node.querySelector(".state");
  mark.textContent = outcome === "ok" ? "done" : "failed";
  mark.className = `state ${outcome}`;
  const diagnostics = (event.diagnostics || []).map((d) => d.message).filter(Boolean);
  if (diagnostics.length) node.append(el("pre", "", diagnostics.join("\n")));
  // edit_file sends text, not a diff: the diff it applied comes back in its result.
  if (outcome === "ok" && output && typeof output.diff === "string" && output.diff) {
    node.append(diffView(output.diff));
  }
  if (output !== undefined) {
    const result = el("details");
    result.append(el("summary", "small", "result"), el("pre", "", shown(output)));
    node.append(result);
  }
  state.text = null;
}

function finalBlock(event, status) {
  setStatus(status);
  const node = block(`final ${status}`, "run finished");
  node.append(el("div", "", `Status: ${status}`));
  for (const d of event.diagnostics || []) node.append(el("div", "small", `${d.code || ""} ${d.message || ""}`.trim()));
}

function renderOther(event) {
  block("milestone", event.event).append(el("pre", "", shown(event.payload)));
}

// --- wiring -----------------------------------------------------------------------------

function readHash() {
  const params = new URLSearchParams(location.hash.slice(1));
  for (const [key, field] of [["app", "app"], ["tenant", "tenant"]]) {
    const value = params.get(key);
    if (value && UUID.test(value)) $(field).value = value;
  }
  const run = params.get("run");
  return run && UUID.test(run) ? run : "";
}

function init() {
  const wanted = readHash();
  $("connect-form").addEventListener("submit", (e) => {
    e.preventDefault();
    say("");
    const appId = $("app").value.trim();
    const tenant = $("tenant").value.trim();
    if (!UUID.test(appId) || (tenant && !UUID.test(tenant))) {
      say("App id and tenant id are UUIDs.");
      return;
    }
    Object.assign(state, { token: $("token").value.trim(), tenant, appId });
    const first = !state.runId && wanted;
    loadRuns()
      .then(() => (first ? watch(wanted) : null))
      .then(setHash)
      .catch((err) => say(err.message));
  });
  $("refresh-runs").addEventListener("click", () => loadRuns().catch((e) => say(e.message)));
  $("cancel").addEventListener("click", () => {
    $("cancel").disabled = true;
    api("POST", runsPath(`/${state.runId}/cancel`))
      .then((run) => { showRun(run); loadRuns(); })
      .catch((e) => { say(e.message); $("cancel").disabled = false; });
  });
}

init();
