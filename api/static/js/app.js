// The agent sidebar: conversation on one side, live suggestions (intent, emotion, KB answers, reply
// templates) on the other. Plain ES modules, no build step. All KB and customer text goes into the DOM
// as text nodes (textContent / createTextNode), never as HTML.

import { createClient, SuggestScheduler } from "./api.js";
import { findDemo, DEMOS } from "./demos.js";
import { fillPlaceholders, highlightInto, parseTranscript, placeholderLabels, placeholderSegments, renderMarkdown } from "./text.js";

const MAX_TURNS = 50; // the API's defaults (ASSIST_MAX_TURNS / ASSIST_MAX_TURN_CHARS): send the latest turns only
const MAX_TURN_CHARS = 2000;
const TOP_K = 3;
const KEY_STORE = "assist.apiKey";
const DEV_KEY = "dev-key";
const LOOPBACK = ["localhost", "127.0.0.1", "[::1]", "::1"];
const ROLE_LABEL = { customer: "客户", agent: "客服", system: "系统" };
const LEVEL_LABEL = ["平静", "不耐烦", "不满", "愤怒 / 正式投诉"];

const $ = (id) => document.getElementById(id);

/** el("div", {class: "x", onclick: f}, "text", child) — attributes and children, text as text nodes. */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "dataset") Object.assign(node.dataset, v);
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c == null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function newSessionId() {
  const rand = Math.random().toString(36).slice(2, 8);
  return `conv-${Date.now().toString(36)}-${rand}`;
}

// --- state -----------------------------------------------------------------------------------------

const state = {
  sessionId: newSessionId(),
  turns: [], // {role, text, ts}
  result: null, // the latest suggest response shown
  loading: false,
  error: null, // ApiError of the latest request, or null
  dismissed: new Set(), // "article:id" / "template:id", per conversation
  fills: {}, // template variable name -> value typed by the agent, per conversation
  edits: {}, // template id -> text as the agent edited it, per conversation
  editing: null, // template id whose text is open for editing
  details: new Map(), // "version:template id" -> template detail (variable descriptions)
  inserted: null, // {id, text, ctx}: the template last put into the reply box
  replay: null, // {cancelled} while a demo is replaying
};

function storedKey() {
  try {
    return localStorage.getItem(KEY_STORE) || "";
  } catch {
    return "";
  }
}

function isDev() {
  return LOOPBACK.includes(location.hostname) || new URLSearchParams(location.search).has("dev");
}

let apiKey = storedKey() || (isDev() ? DEV_KEY : "");

const client = createClient({ getKey: () => apiKey });

// --- feedback --------------------------------------------------------------------------------------

/** Posts shown / used / dismissed / edited events; "shown" once per suggestion per conversation. */
class FeedbackLog {
  constructor() {
    this.reset(state.sessionId);
    this.sent = []; // {event, suggestion_id, status} for tests and debugging
  }

  reset(sessionId) {
    this.sessionId = sessionId;
    this.shownAt = new Map(); // "kind:id" -> performance.now() when first shown in this conversation
  }

  shown(item, ctx) {
    const key = `${item.kind}:${item.id}`;
    if (this.shownAt.has(key)) return;
    this.shownAt.set(key, performance.now());
    this.post("shown", item, ctx);
  }

  post(event, item, ctx, { text, withConversation = event !== "shown" } = {}) {
    const shownAt = this.shownAt.get(`${item.kind}:${item.id}`);
    const body = {
      event,
      suggestion_id: item.id,
      kind: item.kind,
      intent: ctx.intent || undefined,
      index_version: ctx.index_version || undefined,
      // the schema's latency: time from the suggestion being shown to this action
      latency_ms: shownAt == null ? undefined : Math.max(0, Math.round(performance.now() - shownAt)),
      session_id: this.sessionId,
      conversation: withConversation && state.turns.length ? conversationForApi() : undefined,
      text: text ? text.slice(0, 8000) : undefined,
    };
    const record = { event, suggestion_id: item.id, kind: item.kind, status: "pending" };
    this.sent.push(record);
    client.feedback(body).then(
      () => (record.status = "ok"),
      (err) => {
        record.status = "error";
        console.warn("assist: feedback not recorded", event, item.id, err.message);
      },
    );
  }
}

const feedback = new FeedbackLog();

function resultContext() {
  const r = state.result;
  return { intent: r ? r.intent.name : null, index_version: r ? r.index_version : null };
}

// --- conversation ----------------------------------------------------------------------------------

function conversationForApi() {
  return state.turns.slice(-MAX_TURNS).map((t) => ({ role: t.role, text: t.text.slice(0, MAX_TURN_CHARS) }));
}

function customerProfile() {
  const profile = { name: $("cust-name").value.trim(), tier: $("cust-tier").value, order_id: $("cust-order").value.trim() };
  return Object.fromEntries(Object.entries(profile).filter(([, v]) => v));
}

function setProfile(p = {}) {
  $("cust-name").value = p.name || "";
  $("cust-tier").value = p.tier === "VIP" ? "VIP" : "普通";
  $("cust-order").value = p.order_id || "";
}

function hasCustomerTurn() {
  return state.turns.some((t) => t.role === "customer" && t.text.trim());
}

function timeLabel(ts) {
  const d = new Date(ts);
  return `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
}

function renderTurn(turn) {
  const li = el(
    "li",
    { class: `msg ${turn.role}` },
    el("span", { class: "who" }, ROLE_LABEL[turn.role] || turn.role),
    el("p", { class: "bubble" }, turn.text),
    el("time", { datetime: new Date(turn.ts).toISOString() }, timeLabel(turn.ts)),
  );
  $("messages").append(li);
}

function renderMessages() {
  $("messages").replaceChildren();
  if (!state.turns.length) {
    $("messages").append(el("li", { class: "msg-empty" }, "还没有消息。选择一个演示对话回放，粘贴对话记录，或在下方以客户身份输入。"));
  }
  state.turns.forEach(renderTurn);
  scrollMessages();
}

function scrollMessages() {
  const box = $("messages");
  box.scrollTop = box.scrollHeight;
}

/** Append a turn; customer turns refresh the suggestions (debounced). */
function addTurn(role, text) {
  const clean = String(text || "").trim().slice(0, MAX_TURN_CHARS);
  if (!clean) return;
  if (!state.turns.length) $("messages").replaceChildren();
  const turn = { role, text: clean, ts: Date.now() };
  state.turns.push(turn);
  renderTurn(turn);
  scrollMessages();
  if (role === "customer") scheduler.schedule();
}

/** A fresh conversation: new session id, nothing dismissed or filled, no suggestions. */
function newConversation(turns = [], profile = null) {
  stopReplay();
  scheduler.cancel();
  state.sessionId = newSessionId();
  feedback.reset(state.sessionId);
  Object.assign(state, { turns: [], result: null, error: null, loading: false, dismissed: new Set(), fills: {}, edits: {}, editing: null, inserted: null });
  if (profile) setProfile(profile);
  const now = Date.now();
  state.turns = turns.map((t, i) => ({ role: t.role, text: String(t.text).slice(0, MAX_TURN_CHARS), ts: now - (turns.length - i) * 1000 }));
  renderMessages();
  renderPanel();
  if (hasCustomerTurn()) scheduler.run();
}

function stopReplay() {
  if (state.replay) state.replay.cancelled = true;
  state.replay = null;
  $("demo-play").textContent = "▶ 回放";
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function replayDemo(demo) {
  newConversation([], demo.customer);
  const run = (state.replay = { cancelled: false });
  $("demo-play").textContent = "■ 停止";
  for (const [i, turn] of demo.turns.entries()) {
    if (i) await sleep(turn.role === "customer" ? 900 : 600);
    if (run.cancelled) return;
    addTurn(turn.role, turn.text);
  }
  if (state.replay === run) stopReplay();
}

// --- suggestions: requests ---------------------------------------------------------------------------

const scheduler = new SuggestScheduler({
  delayMs: 300,
  fetchSuggest: (payload, signal) => client.suggest(payload, signal),
  buildPayload: () => (hasCustomerTurn() ? { conversation: conversationForApi(), customer: customerProfile(), top_k: TOP_K } : null),
  onStart: () => {
    state.loading = true;
    renderLoading();
  },
  onResult: (data, meta) => {
    state.loading = false;
    state.error = null;
    state.result = data;
    state.roundTripMs = meta.roundTripMs;
    renderPanel();
    markShown();
    loadTemplateDetails(data);
  },
  onError: (err) => {
    state.loading = false;
    state.error = err;
    renderPanel();
  },
});

async function loadTemplateDetails(data) {
  const wanted = data.templates.filter((t) => t.missing_variables.length && !state.details.has(`${data.index_version}:${t.template_id}`));
  if (!wanted.length) return;
  const got = await Promise.allSettled(wanted.map((t) => client.template(t.template_id)));
  got.forEach((res, i) => {
    if (res.status === "fulfilled") state.details.set(`${data.index_version}:${wanted[i].template_id}`, res.value);
  });
  if (state.result === data) renderTemplates();
}

function markShown() {
  const r = state.result;
  if (!r) return;
  const ctx = resultContext();
  for (const a of visibleAnswers()) feedback.shown({ kind: "article", id: a.article_id }, ctx);
  for (const t of visibleTemplates()) feedback.shown({ kind: "template", id: t.template_id }, ctx);
}

const visibleAnswers = () => (state.result ? state.result.answers.filter((a) => !state.dismissed.has(`article:${a.article_id}`)) : []);
const visibleTemplates = () => (state.result ? state.result.templates.filter((t) => !state.dismissed.has(`template:${t.template_id}`)) : []);

// --- suggestions: rendering --------------------------------------------------------------------------

function renderLoading() {
  const panel = $("suggestions");
  panel.classList.toggle("loading", state.loading);
  panel.setAttribute("aria-busy", String(state.loading));
  if (state.loading && !state.result) {
    $("empty").hidden = true;
    $("answers").replaceChildren(...skeletons(3, "answer"));
    $("templates").replaceChildren(...skeletons(2, "template"));
  }
}

function skeletons(n, kind) {
  return Array.from({ length: n }, () => el("div", { class: `card skeleton ${kind}`, "aria-hidden": "true" }, el("span"), el("span"), el("span")));
}

function renderPanel() {
  renderLoading();
  renderConn();
  renderError();
  renderEscalation();
  renderIntent();
  renderAnswers();
  renderTemplates();
  const r = state.result;
  $("suggest-meta").textContent = r
    ? `${Math.round(state.roundTripMs || r.timings_ms.total || 0)} ms · 索引 ${r.index_version}`
    : "";
  $("empty").hidden = Boolean(r || state.loading || state.error);
}

function renderConn() {
  const conn = $("conn");
  const err = state.error;
  if (err && err.kind === "auth") [conn.dataset.state, conn.textContent] = ["error", "API key 无效"];
  else if (err && err.kind === "down") [conn.dataset.state, conn.textContent] = ["error", "服务不可用"];
  else if (state.result) [conn.dataset.state, conn.textContent] = ["ok", "已连接"];
  else [conn.dataset.state, conn.textContent] = ["idle", apiKey ? "就绪" : "未设置 API key"];
}

function errorText(err) {
  if (err.kind === "auth") return ["API key 无效，请在设置中更新", `服务器返回 ${err.status}：${err.message}`];
  if (err.kind === "down") {
    const why = err.status ? `服务器返回 ${err.status}：${err.message}` : err.message;
    return ["assist 服务暂时不可用（网络错误或服务未就绪），请稍后重试", why];
  }
  if (err.kind === "client") return ["请求被拒绝", `${err.status}：${err.message}`];
  return ["assist 服务出错，请重试", `${err.status}：${err.message}`];
}

function renderError() {
  const box = $("error");
  const err = state.error;
  box.hidden = !err;
  box.replaceChildren();
  if (!err) return;
  box.dataset.kind = err.kind;
  const [title, detail] = errorText(err);
  const actions = el("div", { class: "row" });
  if (err.kind === "auth") actions.append(el("button", { class: "btn btn-primary", type: "button", onclick: () => openSettings(true) }, "打开设置"));
  actions.append(el("button", { class: "btn", type: "button", id: "retry", onclick: retry }, "重试"));
  box.append(el("strong", { class: "error-title" }, title), el("p", { class: "error-detail" }, detail));
  if (state.result) box.append(el("p", { class: "error-detail" }, "下方为上一次的结果。"));
  box.append(actions);
}

function retry() {
  state.error = null;
  renderError();
  scheduler.run();
}

function renderEscalation() {
  const box = $("escalation");
  const r = state.result;
  const emo = r && r.emotion;
  const show = Boolean(emo && (emo.escalate || r.intent.escalate));
  box.hidden = !show;
  $("esc-flag").hidden = !show; // in the top bar too: the banner may be scrolled out of a narrow sidebar
  box.replaceChildren();
  if (!show) return;
  const level = emo.level;
  $("esc-flag").textContent = `⚠ 情绪升级 ${level}/3`;
  box.append(
    el("div", { class: "esc-title" }, el("span", { class: "esc-icon", "aria-hidden": "true" }, "⚠"),
      `需要升级处理 · 情绪等级 ${level}/3（${LEVEL_LABEL[level] || ""}）`),
    el("div", { class: "esc-cues" }, el("span", { class: "esc-label" }, "线索："),
      emo.cues.length ? emo.cues.map((c) => el("span", { class: "cue" }, c)) : el("span", { class: "cue" }, r.intent.label)),
    el("p", { class: "esc-advice" }, "先真诚致歉、不争辩，确认诉求后按投诉流程升级主管 / 建加急工单。"),
  );
}

function pct(x) {
  return `${Math.round((Number(x) || 0) * 100)}%`;
}

function renderIntent() {
  const box = $("intent");
  const r = state.result;
  box.hidden = !r;
  box.replaceChildren();
  if (!r) return;
  const i = r.intent;
  const oos = i.name === "out_of_scope";
  const conf = Number(i.confidence) || 0;
  box.append(
    el("div", { class: "intent-main" },
      el("span", { class: "intent-caption" }, "意图"),
      el("span", { class: `intent-label${oos ? " oos" : ""}`, "data-intent": i.name }, oos ? `未识别（${i.label}）` : i.label),
      el("span", { class: "confidence", title: "置信度" }, pct(conf)),
      el("span", { class: "bar", role: "meter", "aria-label": "意图置信度", "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": String(Math.round(conf * 100)) },
        el("span", { style: `width:${Math.max(2, Math.min(100, conf * 100))}%` })),
    ),
  );
  if (i.alternatives && i.alternatives.length) {
    box.append(el("div", { class: "alts" }, el("span", { class: "intent-caption" }, "其他可能"),
      i.alternatives.map((a) => el("span", { class: "alt", "data-intent": a.name }, `${a.label} ${pct(a.confidence)}`))));
  }
  const emo = r.emotion;
  if (emo && !emo.escalate && emo.level > 0) {
    box.append(el("div", { class: "mood" }, `客户情绪：${LEVEL_LABEL[emo.level]}`, emo.cues.length ? `（${emo.cues.join("、")}）` : ""));
  }
}

function dismiss(kind, id) {
  const key = `${kind}:${id}`;
  if (state.dismissed.has(key)) return;
  state.dismissed.add(key);
  feedback.post("dismissed", { kind, id }, resultContext());
  if (kind === "article") renderAnswers();
  else renderTemplates();
  toast("已忽略，本次对话不再显示");
}

function renderAnswers() {
  const box = $("answers");
  const r = state.result;
  if (!r) {
    if (!state.loading) box.replaceChildren(...skeletons(2, "answer idle"));
    return;
  }
  box.replaceChildren();
  if (r.abstained || !r.answers.length) {
    box.append(el("div", { class: "abstain", role: "note" },
      el("strong", {}, "知识库中没有足够相关的答案"),
      el("p", {}, "请向客户追问具体情况（订单、商品、支付方式等），或转交专家处理，避免凭猜测作答。")));
    return;
  }
  const answers = visibleAnswers();
  if (!answers.length) box.append(el("p", { class: "muted" }, "答案都已忽略。"));
  answers.forEach((a, n) => {
    const snippet = el("p", { class: "snippet" });
    highlightInto(snippet, a.snippet, a.matched_terms);
    box.append(el("article", { class: "card answer", "data-id": a.article_id, "aria-labelledby": `ans-${n}` },
      el("header", { class: "card-head" },
        el("span", { class: "rank", "aria-hidden": "true" }, String(n + 1)),
        el("h4", { id: `ans-${n}` }, a.title),
        el("button", { class: "btn btn-ghost icon dismiss", type: "button", "aria-label": `忽略答案：${a.title}`, title: "忽略", onclick: () => dismiss("article", a.article_id) }, "✕")),
      el("p", { class: "path" }, a.heading_path.join(" > ")),
      snippet,
      el("footer", { class: "card-foot" },
        el("button", { class: "btn btn-link", type: "button", "data-focus-key": `open:${a.article_id}`, onclick: () => openArticle(a) }, "查看全文"),
        el("button", { class: "btn btn-link", type: "button", onclick: () => copyAnswer(a) }, "复制摘要"),
        el("span", { class: "score", title: "相关度" }, `相关度 ${Number(a.score).toFixed(2)}`))));
  });
}

// --- templates -------------------------------------------------------------------------------------

/** [{name, label}] for a template's missing variables; label is what the 【...】 placeholder shows. */
function missingVars(t) {
  const r = state.result;
  const detail = r && state.details.get(`${r.index_version}:${t.template_id}`);
  if (detail) {
    const byName = new Map(detail.variables.map((v) => [v.name, v]));
    return t.missing_variables.map((name) => ({ name, label: (byName.get(name) || {}).description || name }));
  }
  // Detail not loaded (yet): placeholders follow the variables' order in most templates.
  const labels = placeholderLabels(t.text);
  return t.missing_variables.map((name, i) => ({ name, label: labels.length === t.missing_variables.length ? labels[i] : name }));
}

function labelValues(t) {
  return Object.fromEntries(missingVars(t).map((v) => [v.label, state.fills[v.name] || ""]));
}

/** The text the agent would send now: edited or rendered, with typed variables filled in. */
function templateText(t) {
  return fillPlaceholders(state.edits[t.template_id] ?? t.text, labelValues(t));
}

function renderTemplateText(node, text) {
  node.replaceChildren();
  for (const seg of placeholderSegments(text)) {
    node.append(seg.placeholder ? el("span", { class: "slot", title: "待填写" }, seg.text) : document.createTextNode(seg.text));
  }
}

function refreshTemplateTexts() {
  for (const t of visibleTemplates()) {
    const node = document.querySelector(`.card.template[data-id="${CSS.escape(t.template_id)}"] .tpl-text`);
    if (node) renderTemplateText(node, templateText(t));
  }
}

function onVarInput(e) {
  const input = e.target;
  state.fills[input.dataset.var] = input.value;
  for (const other of document.querySelectorAll(`input[data-var="${CSS.escape(input.dataset.var)}"]`)) {
    if (other !== input) other.value = input.value;
  }
  refreshTemplateTexts();
}

function renderTemplates() {
  const box = $("templates");
  const r = state.result;
  if (!r) {
    if (!state.loading) box.replaceChildren(...skeletons(2, "template idle"));
    return;
  }
  const focus = rememberFocus(box);
  box.replaceChildren();
  const templates = visibleTemplates();
  if (!templates.length) {
    box.append(el("p", { class: "muted" }, r.templates.length ? "模板都已忽略。" : "没有匹配的回复模板。"));
  }
  templates.forEach((t, n) => {
    const id = t.template_id;
    const shortcut = n < 3 ? `Alt+${n + 1}` : null;
    const vars = missingVars(t);
    const editing = state.editing === id;
    const edited = state.edits[id] != null;
    const text = el("div", { class: "tpl-text", "aria-label": "回复内容" });
    renderTemplateText(text, templateText(t));
    const body = editing
      ? el("textarea", { class: "tpl-edit", rows: "6", "aria-label": `编辑模板：${t.title}`, "data-focus-key": `edit:${id}` })
      : text;
    if (editing) body.value = templateText(t);
    box.append(el("article", { class: "card template", "data-id": id, "aria-labelledby": `tpl-${n}` },
      el("header", { class: "card-head" },
        shortcut ? el("kbd", { class: "shortcut", title: `${shortcut} 复制` }, shortcut) : null,
        el("h4", { id: `tpl-${n}` }, t.title),
        t.tier ? el("span", { class: "badge vip" }, `${String(t.tier).toUpperCase()} 专属`) : null,
        edited ? el("span", { class: "badge" }, "已编辑") : null,
        el("button", { class: "btn btn-ghost icon dismiss", type: "button", "aria-label": `忽略模板：${t.title}`, title: "忽略", onclick: () => dismiss("template", id) }, "✕")),
      vars.length
        ? el("div", { class: "vars" }, vars.map((v) => el("label", { class: "var" },
            el("span", {}, v.label),
            el("input", { type: "text", "data-var": v.name, "data-focus-key": `var:${id}:${v.name}`, value: state.fills[v.name] || "", placeholder: "待填写", autocomplete: "off", oninput: onVarInput }))))
        : null,
      body,
      el("footer", { class: "card-foot" },
        el("button", { class: "btn btn-primary copy", type: "button", "data-focus-key": `copy:${id}`, "aria-keyshortcuts": shortcut, onclick: () => copyTemplate(t) }, "复制", shortcut ? el("kbd", {}, shortcut) : null),
        el("button", { class: "btn insert", type: "button", "data-focus-key": `insert:${id}`, "aria-keyshortcuts": shortcut && `Alt+Shift+${n + 1}`, onclick: () => insertTemplate(t) }, "插入回复"),
        editing
          ? el("button", { class: "btn", type: "button", "data-focus-key": `edit-done:${id}`, onclick: () => finishEdit(t) }, "完成编辑")
          : el("button", { class: "btn btn-ghost", type: "button", "data-focus-key": `edit-start:${id}`, onclick: () => startEdit(t) }, "编辑"),
        edited && !editing ? el("button", { class: "btn btn-ghost", type: "button", onclick: () => revertEdit(t) }, "还原") : null,
        el("span", { class: "score", title: "相关度" }, `相关度 ${Number(t.score).toFixed(2)}`))));
  });
  restoreFocus(box, focus);
}

function rememberFocus(container) {
  const a = document.activeElement;
  if (!a || !container.contains(a) || !a.dataset.focusKey) return null;
  return { key: a.dataset.focusKey, start: a.selectionStart, end: a.selectionEnd };
}

function restoreFocus(container, focus) {
  if (!focus) return;
  const node = container.querySelector(`[data-focus-key="${CSS.escape(focus.key)}"]`);
  if (!node) return;
  node.focus();
  if (focus.start != null && typeof node.setSelectionRange === "function") {
    try {
      node.setSelectionRange(focus.start, focus.end);
    } catch {
      /* not a text control */
    }
  }
}

function startEdit(t) {
  state.editing = t.template_id;
  renderTemplates();
  const area = document.querySelector(`[data-focus-key="edit:${CSS.escape(t.template_id)}"]`);
  if (area) area.focus();
}

function finishEdit(t) {
  const area = document.querySelector(`[data-focus-key="edit:${CSS.escape(t.template_id)}"]`);
  const before = templateText(t);
  state.editing = null;
  if (area && area.value.trim() && area.value !== before) {
    state.edits[t.template_id] = area.value;
    feedback.post("edited", { kind: "template", id: t.template_id }, resultContext(), { text: area.value });
  }
  renderTemplates();
  const btn = document.querySelector(`[data-focus-key="edit-start:${CSS.escape(t.template_id)}"]`);
  if (btn) btn.focus();
}

function revertEdit(t) {
  delete state.edits[t.template_id];
  renderTemplates();
}

/** The template text when nothing required is left blank; otherwise focus the first blank and say so. */
function readyText(t) {
  const text = templateText(t);
  const blanks = placeholderLabels(text);
  if (!blanks.length) return text;
  const first = missingVars(t).find((v) => !String(state.fills[v.name] || "").trim());
  const input = first && document.querySelector(`[data-focus-key="var:${CSS.escape(t.template_id)}:${CSS.escape(first.name)}"]`);
  if (input) input.focus();
  toast(`请先填写：${blanks.join("、")}`, "warn");
  return null;
}

async function copyTemplate(t) {
  if (state.editing === t.template_id) finishEdit(t);
  const final = readyText(t);
  if (final == null) return;
  if (await copyText(final)) {
    feedback.post("used", { kind: "template", id: t.template_id }, resultContext(), { text: final });
    toast(`已复制「${t.title}」`);
  } else {
    toast("复制失败：请手动选择文本复制", "warn");
  }
}

function insertTemplate(t) {
  if (state.editing === t.template_id) finishEdit(t);
  const final = readyText(t);
  if (final == null) return;
  const box = $("composer-text");
  box.value = final;
  document.querySelector('input[name="role"][value="agent"]').checked = true;
  state.inserted = { id: t.template_id, text: final, ctx: resultContext() };
  feedback.post("used", { kind: "template", id: t.template_id }, resultContext(), { text: final });
  box.focus();
  box.setSelectionRange(box.value.length, box.value.length);
  toast("已插入回复框，可修改后发送");
}

async function copyAnswer(a) {
  if (await copyText(a.snippet)) {
    feedback.post("used", { kind: "article", id: a.article_id }, resultContext(), { text: a.snippet });
    toast("已复制答案摘要");
  }
}

/** navigator.clipboard, else a hidden textarea and execCommand (http pages, older browsers, denied permission). */
async function copyText(text) {
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch {
    /* fall back below */
  }
  const active = document.activeElement;
  const area = el("textarea", { class: "clipboard-fallback", readonly: true, "aria-hidden": "true" });
  area.value = text;
  document.body.append(area);
  area.select();
  let ok = false;
  try {
    ok = document.execCommand("copy");
  } catch {
    ok = false;
  }
  area.remove();
  if (active && active.focus) active.focus();
  return ok;
}

// --- article drawer ----------------------------------------------------------------------------------

let articleCtrl = null;

async function openArticle(a) {
  const dlg = $("article");
  $("article-title").textContent = a.title;
  $("article-meta").textContent = a.heading_path.join(" > ");
  const body = $("article-body");
  body.replaceChildren(el("p", { class: "muted" }, "加载中…"));
  if (!dlg.open) dlg.showModal();
  if (articleCtrl) articleCtrl.abort();
  const ctrl = (articleCtrl = new AbortController());
  try {
    const art = await client.article(a.article_id, ctrl.signal);
    if (ctrl !== articleCtrl) return;
    $("article-title").textContent = art.title;
    $("article-meta").textContent = [art.category, art.updated ? `更新于 ${art.updated}` : "", art.tags.length ? `标签：${art.tags.join("、")}` : ""]
      .filter(Boolean).join(" · ");
    body.replaceChildren(renderMarkdown(art.body));
    // Walk the heading path down the article's headings, so a repeated subheading finds the right section.
    const headings = [...body.querySelectorAll("[data-heading]")];
    let heading = null;
    let from = 0;
    for (const part of a.heading_path.slice(1)) {
      const at = headings.findIndex((h, i) => i >= from && h.dataset.heading.trim() === String(part).trim());
      if (at < 0) break;
      heading = headings[at];
      from = at + 1;
    }
    if (heading) {
      heading.classList.add("target");
      heading.scrollIntoView({ block: "start" });
    } else {
      body.scrollTop = 0;
    }
  } catch (err) {
    if (err.name === "AbortError") return;
    const [title, detail] = errorText(err);
    body.replaceChildren(el("div", { class: "error-box", role: "alert" }, el("strong", {}, title), el("p", {}, detail)));
  }
}

// --- settings, toast, shortcuts ---------------------------------------------------------------------

function openSettings(focus) {
  $("settings").hidden = false;
  $("settings-toggle").setAttribute("aria-expanded", "true");
  if (focus) {
    $("api-key").focus();
    $("api-key").select();
  }
}

function renderKeyNote() {
  const note = $("api-key-note");
  if (!storedKey() && apiKey === DEV_KEY) note.textContent = "开发模式：已预填默认 key「dev-key」（仅 assist serve --dev 接受）。保存后存于本浏览器 localStorage。";
  else if (!apiKey) note.textContent = "请输入 API key（由管理员提供），保存在本浏览器 localStorage。";
  else note.textContent = "已保存在本浏览器（localStorage），随请求以 X-API-Key 发送。";
}

let toastTimer = null;
function toast(message, kind = "ok") {
  const t = $("toast");
  t.textContent = message;
  t.dataset.kind = kind;
  t.classList.add("show");
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => t.classList.remove("show"), 2200);
}

function onKeydown(e) {
  if (e.altKey && !e.ctrlKey && !e.metaKey && /^Digit[1-9]$/.test(e.code)) {
    const t = visibleTemplates()[Number(e.code.slice(5)) - 1];
    if (!t || Number(e.code.slice(5)) > 3) return;
    e.preventDefault();
    if (e.shiftKey) insertTemplate(t);
    else copyTemplate(t);
  }
}

// --- wiring ------------------------------------------------------------------------------------------

function sendFromComposer() {
  const box = $("composer-text");
  const text = box.value.trim();
  if (!text) return;
  const role = document.querySelector('input[name="role"]:checked').value;
  if (role === "agent" && state.inserted) {
    const ins = state.inserted;
    if (text !== ins.text.trim()) feedback.post("edited", { kind: "template", id: ins.id }, ins.ctx, { text });
    state.inserted = null;
  }
  addTurn(role, text);
  box.value = "";
  box.focus();
}

function init() {
  for (const d of DEMOS) $("demo-select").append(el("option", { value: d.id }, d.title));
  $("demo-play").addEventListener("click", () => {
    if (state.replay) return stopReplay();
    const demo = findDemo($("demo-select").value);
    if (demo) replayDemo(demo);
  });
  $("chat-clear").addEventListener("click", () => newConversation());
  $("paste-toggle").addEventListener("click", () => {
    const box = $("paste-box");
    box.hidden = !box.hidden;
    $("paste-toggle").setAttribute("aria-expanded", String(!box.hidden));
    if (!box.hidden) $("paste-text").focus();
  });
  $("paste-cancel").addEventListener("click", () => {
    $("paste-box").hidden = true;
    $("paste-toggle").setAttribute("aria-expanded", "false");
  });
  $("paste-box").addEventListener("submit", (e) => {
    e.preventDefault();
    const turns = parseTranscript($("paste-text").value);
    if (!turns.length) return toast("没有识别到对话内容", "warn");
    $("paste-box").hidden = true;
    $("paste-toggle").setAttribute("aria-expanded", "false");
    $("paste-text").value = "";
    newConversation(turns);
    toast(`已导入 ${turns.length} 条消息`);
  });
  $("composer").addEventListener("submit", (e) => {
    e.preventDefault();
    sendFromComposer();
  });
  $("composer-text").addEventListener("keydown", (e) => {
    if ((e.ctrlKey || e.metaKey) && e.key === "Enter" && !e.isComposing) {
      e.preventDefault();
      sendFromComposer();
    }
  });
  for (const id of ["cust-name", "cust-tier", "cust-order"]) {
    $(id).addEventListener("input", () => hasCustomerTurn() && scheduler.schedule());
  }
  $("settings-toggle").addEventListener("click", () => {
    const box = $("settings");
    if (box.hidden) openSettings(true);
    else {
      box.hidden = true;
      $("settings-toggle").setAttribute("aria-expanded", "false");
    }
  });
  $("api-key").value = apiKey;
  $("settings-form").addEventListener("submit", (e) => {
    e.preventDefault();
    apiKey = $("api-key").value.trim();
    try {
      localStorage.setItem(KEY_STORE, apiKey);
    } catch {
      /* private mode: the key lasts for this page only */
    }
    renderKeyNote();
    $("settings").hidden = true;
    $("settings-toggle").setAttribute("aria-expanded", "false");
    toast("API key 已保存");
    if (state.error || (hasCustomerTurn() && !state.result)) retry();
    else renderConn();
  });
  $("article-close").addEventListener("click", () => $("article").close());
  $("article").addEventListener("click", (e) => {
    if (e.target === $("article")) $("article").close(); // a click on the backdrop
  });
  document.addEventListener("keydown", onKeydown);
  renderKeyNote();
  if (!apiKey) openSettings(false);

  const demo = findDemo(new URLSearchParams(location.search).get("demo"));
  if (demo) {
    $("demo-select").value = demo.id;
    newConversation(demo.turns, demo.customer);
  } else {
    renderMessages();
    renderPanel();
  }
  document.documentElement.dataset.ready = "true";
}

// For tests and debugging in the console.
window.assistSidebar = { state, feedback, scheduler };

init();
