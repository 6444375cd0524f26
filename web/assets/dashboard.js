// artel's dashboard: plain JavaScript over the public API (docs/API.md). Everything shown
// comes from /api/v1 and the event WebSocket; text from the server is only ever put into the
// page with textContent.
"use strict";

const $ = (id) => document.getElementById(id);
const store = window.localStorage;
let key = store.getItem("artel.key") || "";
let sessionId = store.getItem("artel.session") || "";
let lastEvent = 0;
let socket = null;
let retry = 500;
const taskKinds = new Map();
// An answer arrives twice — in the POST reply and as a session_message event, in either
// order: whichever comes first is shown and remembered so the other is not.
const fromReplies = [];
const fromEvents = [];
function once(text, mine, theirs) {
  const seen = theirs.indexOf(text);
  if (seen >= 0) { theirs.splice(seen, 1); return false; }
  mine.push(text);
  if (mine.length > 50) mine.shift();
  return true;
}

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}

async function api(method, path, body) {
  const init = { method, headers: { Authorization: "Bearer " + key } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) {
    const message = data && data.error ? data.error.message : response.statusText;
    const error = new Error(message);
    error.status = response.status;
    throw error;
  }
  return data;
}

function append(logId, text, cls) {
  const log = $(logId);
  const stick = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
  log.appendChild(el("div", text, cls));
  while (log.childNodes.length > 2000) log.removeChild(log.firstChild);
  if (stick) log.scrollTop = log.scrollHeight;
}

function showLive(url) {
  const link = $("live-url");
  link.href = url;
  link.textContent = url;
}

function describe(event) {
  const p = event.payload || {};
  const task = event.task ? event.task.slice(-8) : "";
  switch (event.kind) {
    case "task_created": return `task ${task}: ${p.task_kind} — ${p.description}`;
    case "task_status_changed": return `task ${task}: ${p.from} → ${p.to}${p.reason ? " (" + p.reason + ")" : ""}`;
    case "step_started": return `task ${task}: ${p.step} started (attempt ${p.attempt})`;
    case "step_succeeded": return `task ${task}: ${p.step} succeeded`;
    case "step_failed": return `task ${task}: ${p.step} failed: ${p.failure && p.failure.reason}`;
    case "step_resumed": return `task ${task}: ${p.step} resumed`;
    case "worker_status_changed": return `task ${task}: worker ${p.status}`;
    case "worker_output": return `task ${task}: │ ${p.line}`;
    case "spec_written": return `task ${task}: spec v${p.version}${p.confirmed ? "" : " (waiting for your yes)"} — ${String(p.summary).split("\n")[0]}`;
    case "commit_created": return `task ${task}: commit ${String(p.sha).slice(0, 10)} on ${p.branch}`;
    case "tests_finished": return `task ${task}: tests ${p.passed} passed, ${p.failed} failed`;
    case "secret_requested": return `task ${task}: needs the secret ${p.name} — give it in the chat as ${p.name}=value`;
    case "deploy_started": return `task ${task}: deploying`;
    case "deploy_succeeded": return `task ${task}: live at ${p.url}`;
    case "deploy_failed": return `task ${task}: deploy failed: ${p.failure && p.failure.reason}`;
    case "deploy_rolled_back": return `task ${task}: rolled back; the previous deployment keeps serving`;
    case "session_message": return null;
    case "note": return `note from ${p.author}: ${p.text}`;
    default: return `${event.kind} ${JSON.stringify(p)}`;
  }
}

function onEvent(event) {
  if (event.id <= lastEvent) return;
  lastEvent = event.id;
  const p = event.payload || {};
  if (event.kind === "session_message") {
    if (p.session === sessionId && p.role === "product_owner") {
      if (once(p.text, fromEvents, fromReplies)) append("chat-log", "artel: " + p.text);
    }
    return;
  }
  if (event.kind === "deploy_succeeded" && p.url) showLive(p.url);
  const line = describe(event);
  if (line) append("log", `#${event.id} ${line}`);
  if (event.kind.startsWith("task_") || event.kind.startsWith("deploy_")) scheduleProjects();
}

function connect() {
  if (!key) return;
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  // The first connection streams what happens from now on; a reconnection asks for
  // everything after the last event (or heartbeat position) it saw, so nothing is missed.
  const since = lastEvent > 0 ? `since=${lastEvent}&` : "";
  const url = `${scheme}//${location.host}/api/v1/events/ws?${since}` +
    `access_token=${encodeURIComponent(key)}`;
  socket = new WebSocket(url);
  socket.onopen = () => { retry = 500; setState("live", "live"); };
  socket.onmessage = (message) => {
    const data = JSON.parse(message.data);
    if (data.type === "event") onEvent(data.event);
    if (data.type === "heartbeat") lastEvent = Math.max(lastEvent, data.position);
  };
  socket.onclose = (close) => {
    setState(close.code === 4008 ? "too slow, reconnecting" : "reconnecting", "down");
    socket = null;
    if (key) setTimeout(connect, retry);
    retry = Math.min(retry * 2, 10000);
  };
}

function setState(text, cls) {
  const pill = $("stream-state");
  pill.textContent = text;
  pill.className = "pill " + cls;
}

let projectsTimer = null;
function scheduleProjects() {
  if (projectsTimer) return;
  projectsTimer = setTimeout(() => { projectsTimer = null; loadProjects(); }, 400);
}

async function loadProjects() {
  try {
    const projects = (await api("GET", "/api/v1/projects")).items;
    const box = $("projects");
    box.replaceChildren();
    if (projects.length === 0) box.appendChild(el("p", "No projects yet: ask for one in the chat.", "muted"));
    for (const project of projects) {
      const [tasks, deployments, usage] = await Promise.all([
        api("GET", `/api/v1/projects/${project.id}/tasks`),
        api("GET", `/api/v1/projects/${project.id}/deployments`),
        api("GET", `/api/v1/projects/${project.id}/usage`),
      ]);
      const live = deployments.items.find((d) => d.status === "live");
      const title = el("h3", project.name);
      title.id = `project-${project.id}`;
      if (live && live.url) {
        title.appendChild(el("span", " "));
        const link = el("a", live.url);
        link.href = live.url;
        link.target = "_blank";
        link.rel = "noopener";
        title.appendChild(link);
      }
      box.appendChild(title);
      const spent = el("p", describeUsage(usage), "muted");
      spent.id = `usage-${project.id}`;
      box.appendChild(spent);
      const table = el("table");
      const head = el("tr");
      ["task", "kind", "status", "description"].forEach((h) => head.appendChild(el("th", h)));
      table.appendChild(head);
      for (const task of tasks.items.slice(0, 10)) {
        taskKinds.set(task.id, task.kind);
        const row = el("tr");
        row.id = `task-${task.id}`;
        row.appendChild(el("td", task.id.slice(-8)));
        row.appendChild(el("td", task.kind));
        row.appendChild(el("td", task.status, "status-" + task.status));
        row.appendChild(el("td", task.description));
        table.appendChild(row);
      }
      box.appendChild(table);
    }
  } catch (error) {
    handleError(error, "projects");
  }
}

// One line of a project's model usage, from GET /api/v1/projects/{p}/usage.
function describeUsage(u) {
  const calls = u.requests === 1 ? "1 call" : `${u.requests} calls`;
  return `model usage: ${calls} · ${u.tokens_in} tokens in (${u.tokens_cached} cached), ` +
    `${u.tokens_out} out · $${(u.cost_micro_usd / 1e6).toFixed(4)}`;
}

function humanDuration(ms) {
  if (ms < 1000) return `${ms}ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)}s`;
  if (ms < 3600000) return `${Math.floor(ms / 60000)}m${Math.floor((ms % 60000) / 1000)}s`;
  return `${Math.floor(ms / 3600000)}h${Math.floor((ms % 3600000) / 60000)}m`;
}

// What a node serves (its `session`, `project`, `task` labels), linked to the project or task
// in the projects panel when it is shown there.
function servedBy(node) {
  const labels = node.labels || {};
  const out = el("span", undefined, "meta serves");
  for (const [key, value] of Object.entries(labels)) {
    const text = key === "session" && value === sessionId ? "this chat" : `${key} ${String(value).slice(-8)}`;
    const target = document.getElementById(`${key}-${value}`);
    const part = target ? el("a", text) : el("span", text);
    if (target) part.href = `#${key}-${value}`;
    part.title = `${key} ${value}`;
    part.className = "label label-" + key;
    out.appendChild(part);
  }
  return out.childNodes.length ? out : null;
}

function renderNode(node) {
  const item = el("li");
  item.appendChild(el("span", node.name, "node-name"));
  if (node.role && node.role !== node.name) item.appendChild(el("span", node.role, "meta role"));
  item.appendChild(el("span", node.status, "meta status-" + node.status));
  if (!node.path_only) {
    const bits = [];
    if (node.uptime_ms !== null && node.uptime_ms !== undefined) bits.push(`up ${humanDuration(node.uptime_ms)}`);
    if (node.restarts) bits.push(`${node.restarts} restarts`);
    if (node.mailbox_depth !== null && node.mailbox_depth !== undefined) bits.push(`mailbox ${node.mailbox_depth}/${node.mailbox_capacity}`);
    if (node.backlog !== null && node.backlog !== undefined) bits.push(`queued ${node.backlog}`);
    if (bits.length) item.appendChild(el("span", bits.join(" · "), "meta"));
    const serves = servedBy(node);
    if (serves) item.appendChild(serves);
    if (node.last_error) item.appendChild(el("span", `last error: ${node.last_error}`, "meta error"));
  }
  if (node.children && node.children.length) {
    const list = el("ul");
    node.children.forEach((child) => list.appendChild(renderNode(child)));
    item.appendChild(list);
  }
  return item;
}

async function loadTree() {
  try {
    const tree = await api("GET", "/api/v1/tree");
    if (tree.roots.length === 0) {
      $("tree").replaceChildren(el("p", "Nothing of yours runs now: the tree shows the nodes of your own sessions, projects and tasks.", "muted"));
      return;
    }
    const list = el("ul");
    tree.roots.forEach((root) => list.appendChild(renderNode(root)));
    $("tree").replaceChildren(list);
  } catch (error) {
    handleError(error, "tree");
  }
}

function handleError(error, what) {
  if (error.status === 401) return signOut("That key is not valid (any more): " + error.message);
  append("log", `(${what}: ${error.message})`, "error");
}

async function say(text) {
  if (!sessionId) {
    const session = await api("POST", "/api/v1/sessions", { channel: "dashboard" });
    sessionId = session.id;
    store.setItem("artel.session", sessionId);
  }
  append("chat-log", "you: " + text, "user");
  try {
    const reply = await api("POST", `/api/v1/sessions/${sessionId}/messages`, { text });
    for (const line of reply.items) {
      if (once(line.text, fromReplies, fromEvents)) append("chat-log", "artel: " + line.text);
    }
  } catch (error) {
    if (error.status === 404) { sessionId = ""; store.removeItem("artel.session"); }
    append("chat-log", "(not sent: " + error.message + ")", "error");
  }
}

async function loadTranscript() {
  if (!sessionId) return;
  try {
    const lines = (await api("GET", `/api/v1/sessions/${sessionId}/messages`)).items;
    $("chat-log").replaceChildren();
    for (const line of lines) append("chat-log", (line.role === "user" ? "you: " : "artel: ") + line.text, line.role === "user" ? "user" : "");
  } catch (error) {
    sessionId = "";
    store.removeItem("artel.session");
  }
}

async function signIn(candidate) {
  key = candidate.trim();
  try {
    const me = await api("GET", "/api/v1/me");
    store.setItem("artel.key", key);
    $("who").textContent = `${me.user.name} (${me.user.role})`;
    $("sign-in-panel").hidden = true;
    $("app").hidden = false;
    $("sign-out").hidden = false;
    $("sign-in-error").textContent = "";
    // Progress starts with what happens from now on; the projects table shows the past.
    lastEvent = 0;
    await Promise.all([loadProjects(), loadTree(), loadTranscript()]);
    connect();
  } catch (error) {
    signOut(error.status === 401 ? "Unknown or revoked key." : error.message);
  }
}

function signOut(message) {
  key = "";
  store.removeItem("artel.key");
  if (socket) socket.close(1000);
  $("app").hidden = true;
  $("sign-out").hidden = true;
  $("sign-in-panel").hidden = false;
  $("who").textContent = "";
  $("sign-in-error").textContent = message || "";
  setState("offline", "");
}

$("sign-in-form").addEventListener("submit", (e) => { e.preventDefault(); signIn($("api-key").value); });
$("sign-out").addEventListener("click", (e) => { e.preventDefault(); signOut(""); });
$("chat-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const input = $("chat-input");
  const text = input.value.trim();
  if (!text) return;
  input.value = "";
  $("chat-send").disabled = true;
  try { await say(text); } finally { $("chat-send").disabled = false; input.focus(); }
});
setInterval(() => { if (key) loadTree(); }, 2000);
if (key) signIn(key);
