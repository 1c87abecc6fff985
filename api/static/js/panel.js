// The suggestion panel: connection status, errors, the escalation banner, intent and emotion, the KB
// answers, and (through templates.js) the reply templates. It draws state.result and never requests
// suggestions itself: retry() and the result come from the caller.

import { createArticleDrawer } from "./article.js";
import { createTemplates } from "./templates.js";
import { resultContext, state, visibleAnswers, visibleTemplates } from "./state.js";
import { highlightInto } from "./text.js";
import { $, copyText, el, errorText, toast } from "./ui.js";

const LEVEL_LABEL = ["平静", "不耐烦", "不满", "愤怒 / 正式投诉"];

// The intent confidence is calibrated (0.8 = right about 8 times in 10); agents see it as a coarse
// level with the odds in its tooltip; answers and templates show their rank, never raw fused scores.
const CONFIDENCE_LEVELS = [[0.8, "高", "high"], [0.5, "中", "medium"], [0, "低", "low"]];

export function confidenceLevel(x) {
  const value = Number(x) || 0;
  const [, label, name] = CONFIDENCE_LEVELS.find(([min]) => value >= min);
  return { label, name };
}

function skeletons(n, kind) {
  return Array.from({ length: n }, () => el("div", { class: `card skeleton ${kind}`, "aria-hidden": "true" }, el("span"), el("span"), el("span")));
}

/**
 * Wires the panel. Needs client (api.js), feedback (a FeedbackLog), hasKey() for the status line,
 * openSettings(focus), retry() to request the suggestions again, insertReply(text) for templates.
 * Returns { render() after any change of state.result / loading / error, renderLoading(), renderError(),
 *           markShown() after a new result, renderStatus() after the key changed, shortcut(n, insert) }.
 */
export function createPanel({ client, feedback, hasKey, openSettings, retry, insertReply }) {
  const article = createArticleDrawer({ client });
  const templates = createTemplates({ feedback, dismiss, skeletons, insertReply });

  function dismiss(kind, id) {
    const key = `${kind}:${id}`;
    if (state.dismissed.has(key)) return;
    state.dismissed.add(key);
    feedback.dismissed({ kind, id }, resultContext());
    if (kind === "article") renderAnswers();
    else templates.render();
    toast("已忽略，本次对话不再显示");
  }

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

  function renderStatus() {
    const conn = $("conn");
    const err = state.error;
    if (err && err.kind === "auth") [conn.dataset.state, conn.textContent] = ["error", "API key 无效"];
    else if (err && err.kind === "down") [conn.dataset.state, conn.textContent] = ["error", "服务不可用"];
    else if (state.result) [conn.dataset.state, conn.textContent] = ["ok", "已连接"];
    else [conn.dataset.state, conn.textContent] = ["idle", hasKey() ? "就绪" : "未设置 API key"];
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
    if (r.handoff) {
      box.append(el("div", { class: "handoff", id: "handoff" },
        el("div", { class: "row" }, el("strong", {}, "转接说明"),
          el("button", { class: "btn btn-link", type: "button", id: "handoff-copy", onclick: () => copyHandoff(r.handoff.note) }, "复制转接说明")),
        el("pre", { class: "handoff-note" }, r.handoff.note)));
    }
  }

  async function copyHandoff(note) {
    if (await copyText(note)) toast("已复制转接说明");
  }

  async function copyClarify(question) {
    if (await copyText(question)) toast("已复制追问");
  }

  function renderIntent() {
    const box = $("intent");
    const r = state.result;
    box.hidden = !r;
    box.replaceChildren();
    if (!r) return;
    const i = r.intent;
    const oos = i.name === "out_of_scope";
    const level = confidenceLevel(i.confidence);
    box.append(
      el("div", { class: "intent-main" },
        el("span", { class: "intent-caption" }, "意图"),
        el("span", { class: `intent-label${oos ? " oos" : ""}`, "data-intent": i.name }, oos ? `未识别（${i.label}）` : i.label),
        el("span", { class: `confidence level-${level.name}`, title: `意图把握：约 ${Math.round((Number(i.confidence) || 0) * 10)}/10 次判断正确` }, `把握${level.label}`),
      ),
    );
    if (r.route) {
      box.append(el("div", { class: "route", id: "route", title: r.route.reason },
        el("span", { class: "intent-caption" }, "路由"),
        el("span", { class: `queue${r.route.transfer ? " transfer" : ""}` }, r.route.queue),
        el("span", { class: "priority" }, `P${r.route.priority}`),
        el("span", { class: "route-reason" }, r.route.reason)));
    }
    if (r.clarify) {
      const q = r.clarify.question;
      box.append(el("div", { class: "clarify", id: "clarify", role: "note" },
        el("div", { class: "clarify-head" }, el("span", { class: "intent-caption" }, "先确认"),
          r.clarify.options.map((o) => el("span", { class: "alt", "data-intent": o.intent }, o.label))),
        el("p", { class: "clarify-question" }, q),
        el("div", { class: "row" },
          el("button", { class: "btn btn-primary", type: "button", id: "clarify-insert", onclick: () => insertReply(q) }, "插入追问"),
          el("button", { class: "btn btn-link", type: "button", onclick: () => copyClarify(q) }, "复制"))));
    }
    if (i.alternatives && i.alternatives.length) {
      box.append(el("div", { class: "alts" }, el("span", { class: "intent-caption" }, "其他可能"),
        i.alternatives.map((a) => el("span", { class: "alt", "data-intent": a.name }, a.label))));
    }
    const emo = r.emotion;
    if (emo && !emo.escalate && emo.level > 0) {
      box.append(el("div", { class: "mood" }, `客户情绪：${LEVEL_LABEL[emo.level]}`, emo.cues.length ? `（${emo.cues.join("、")}）` : ""));
    }
  }

  async function copyAnswer(a) {
    if (await copyText(a.snippet)) {
      feedback.used({ kind: "article", id: a.article_id }, resultContext(), a.snippet);
      toast("已复制答案摘要");
    }
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
        a.matched_question
          ? el("p", { class: `matched-question${a.direct ? " direct" : ""}`, title: a.direct ? "客户问的正是这条常见问题" : "与客户的问题最接近的常见问题" },
              el("span", { class: "mq-label" }, a.direct ? "直接命中" : "匹配问题"), a.matched_question)
          : null,
        snippet,
        el("footer", { class: "card-foot" },
          el("button", { class: "btn btn-link", type: "button", "data-focus-key": `open:${a.article_id}`, onclick: () => article.open(a) }, "查看全文"),
          el("button", { class: "btn btn-link", type: "button", onclick: () => copyAnswer(a) }, "复制摘要"))));
    });
  }

  function render() {
    renderLoading();
    renderStatus();
    renderError();
    renderEscalation();
    renderIntent();
    renderAnswers();
    templates.render();
    const r = state.result;
    $("suggest-meta").textContent = r ? `${Math.round(state.roundTripMs || r.timings_ms.total || 0)} ms · 索引 ${r.index_version}` : "";
    $("empty").hidden = Boolean(r || state.loading || state.error);
  }

  /** Sends "shown" for every card on screen (once per conversation: FeedbackLog drops repeats). */
  function markShown() {
    if (!state.result) return;
    const ctx = resultContext();
    for (const a of visibleAnswers()) feedback.shown({ kind: "article", id: a.article_id }, ctx);
    for (const t of visibleTemplates()) feedback.shown({ kind: "template", id: t.template_id }, ctx);
  }

  return { render, renderLoading, renderError, renderStatus, markShown, shortcut: templates.shortcut };
}
