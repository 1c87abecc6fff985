// Reply template cards: inline inputs for the variables the conversation did not give, live filling of
// the 【...】 placeholders, copy / insert into the reply box / edit / revert, Alt+1..3 shortcuts.

import { resultContext, state, visibleTemplates } from "./state.js";
import { fillPlaceholders, placeholderLabels, placeholderSegments } from "./text.js";
import { $, copyText, el, rememberFocus, restoreFocus, toast } from "./ui.js";

const SHORTCUTS = 3;

/**
 * [{name, label}] for a template's missing variables; label is what its 【...】 placeholder shows.
 * A server without `missing` only gives names: they stand in as labels.
 */
export function missingVars(t) {
  if (Array.isArray(t.missing)) return t.missing.map((v) => ({ name: v.name, label: v.label || v.name }));
  return (t.missing_variables || []).map((name) => ({ name, label: name }));
}

/** The text the agent would send now: edited or as rendered, with the typed variables filled in. */
export function templateText(t) {
  const values = Object.fromEntries(missingVars(t).map((v) => [v.label, state.fills[v.name] || ""]));
  return fillPlaceholders(state.edits[t.template_id] ?? t.text, values);
}

function renderTemplateText(node, text) {
  node.replaceChildren();
  for (const seg of placeholderSegments(text)) {
    node.append(seg.placeholder ? el("span", { class: "slot", title: "待填写" }, seg.text) : document.createTextNode(seg.text));
  }
}

const byKey = (key) => document.querySelector(`[data-focus-key="${CSS.escape(key)}"]`);

/**
 * The template cards in #templates. Needs feedback (a FeedbackLog), dismiss(kind, id) from the panel,
 * skeletons(n, kind) for the idle look, and insertReply(text) from the conversation pane.
 * Returns { render(), shortcut(n, insert) -> bool (Alt+n: copy, or insert with Shift) }.
 */
export function createTemplates({ feedback, dismiss, skeletons, insertReply }) {
  const item = (t) => ({ kind: "template", id: t.template_id });

  function refreshTexts() {
    for (const t of visibleTemplates()) {
      const node = document.querySelector(`.card.template[data-id="${CSS.escape(t.template_id)}"] .tpl-text`);
      if (node) renderTemplateText(node, templateText(t));
    }
  }

  // One value per variable name: typing an order number in one card fills it in every card.
  function onVarInput(e) {
    const input = e.target;
    state.fills[input.dataset.var] = input.value;
    for (const other of document.querySelectorAll(`input[data-var="${CSS.escape(input.dataset.var)}"]`)) {
      if (other !== input) other.value = input.value;
    }
    refreshTexts();
  }

  function startEdit(t) {
    state.editing = t.template_id;
    render();
    const area = byKey(`edit:${t.template_id}`);
    if (area) area.focus();
  }

  function finishEdit(t) {
    const area = byKey(`edit:${t.template_id}`);
    const before = templateText(t);
    state.editing = null;
    if (area && area.value.trim() && area.value !== before) {
      state.edits[t.template_id] = area.value;
      feedback.edited(item(t), resultContext(), area.value);
    }
    render();
    const btn = byKey(`edit-start:${t.template_id}`);
    if (btn) btn.focus();
  }

  function revertEdit(t) {
    delete state.edits[t.template_id];
    render();
  }

  /** The template text when no placeholder is left; otherwise focus the first blank and say so. */
  function readyText(t) {
    const text = templateText(t);
    const blanks = placeholderLabels(text);
    if (!blanks.length) return text;
    const first = missingVars(t).find((v) => !String(state.fills[v.name] || "").trim());
    const input = first && byKey(`var:${t.template_id}:${first.name}`);
    if (input) input.focus();
    toast(`请先填写：${blanks.join("、")}`, "warn");
    return null;
  }

  async function copy(t) {
    if (state.editing === t.template_id) finishEdit(t);
    const final = readyText(t);
    if (final == null) return;
    if (await copyText(final)) {
      feedback.used(item(t), resultContext(), final);
      toast(`已复制「${t.title}」`);
    } else {
      toast("复制失败：请手动选择文本复制", "warn");
    }
  }

  function insert(t) {
    if (state.editing === t.template_id) finishEdit(t);
    const final = readyText(t);
    if (final == null) return;
    // Remembered so sending a changed version from the reply box counts as an edit of this template.
    state.inserted = { id: t.template_id, text: final, ctx: resultContext() };
    feedback.used(item(t), resultContext(), final);
    insertReply(final);
    toast("已插入回复框，可修改后发送");
  }

  function card(t, n) {
    const id = t.template_id;
    const shortcut = n < SHORTCUTS ? `Alt+${n + 1}` : null;
    const vars = missingVars(t);
    const editing = state.editing === id;
    const edited = state.edits[id] != null;
    const text = el("div", { class: "tpl-text", "aria-label": "回复内容" });
    renderTemplateText(text, templateText(t));
    const body = editing
      ? el("textarea", { class: "tpl-edit", rows: "6", "aria-label": `编辑模板：${t.title}`, "data-focus-key": `edit:${id}` })
      : text;
    if (editing) body.value = templateText(t);
    return el("article", { class: "card template", "data-id": id, "aria-labelledby": `tpl-${n}` },
      el("header", { class: "card-head" },
        shortcut ? el("kbd", { class: "shortcut", title: `${shortcut} 复制` }, shortcut) : null,
        el("h4", { id: `tpl-${n}` }, t.title),
        t.tier ? el("span", { class: "badge vip" }, `${String(t.tier).toUpperCase()} 专属`) : null,
        t.purpose === "escalation" ? el("span", { class: "badge escalation", title: "客户情绪升级：安抚 / 转接用" }, "安抚转接") : null,
        edited ? el("span", { class: "badge" }, "已编辑") : null,
        el("button", { class: "btn btn-ghost icon dismiss", type: "button", "aria-label": `忽略模板：${t.title}`, title: "忽略", onclick: () => dismiss("template", id) }, "✕")),
      vars.length
        ? el("div", { class: "vars" }, vars.map((v) => el("label", { class: "var" },
            el("span", {}, v.label),
            el("input", { type: "text", "data-var": v.name, "data-focus-key": `var:${id}:${v.name}`, value: state.fills[v.name] || "", placeholder: "待填写", autocomplete: "off", oninput: onVarInput }))))
        : null,
      body,
      el("footer", { class: "card-foot" },
        el("button", { class: "btn btn-primary copy", type: "button", "data-focus-key": `copy:${id}`, "aria-keyshortcuts": shortcut, onclick: () => copy(t) }, "复制", shortcut ? el("kbd", {}, shortcut) : null),
        el("button", { class: "btn insert", type: "button", "data-focus-key": `insert:${id}`, "aria-keyshortcuts": shortcut && `Alt+Shift+${n + 1}`, onclick: () => insert(t) }, "插入回复"),
        editing
          ? el("button", { class: "btn", type: "button", "data-focus-key": `edit-done:${id}`, onclick: () => finishEdit(t) }, "完成编辑")
          : el("button", { class: "btn btn-ghost", type: "button", "data-focus-key": `edit-start:${id}`, onclick: () => startEdit(t) }, "编辑"),
        edited && !editing ? el("button", { class: "btn btn-ghost", type: "button", onclick: () => revertEdit(t) }, "还原") : null));
  }

  /** Re-draws the cards from state.result, keeping the focus where the agent was typing. */
  function render() {
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
    templates.forEach((t, n) => box.append(card(t, n)));
    restoreFocus(box, focus);
  }

  /** Alt+n (1..3): copies the n-th visible template, or inserts it when `insertIt`; false if there is none. */
  function shortcut(n, insertIt) {
    const t = n >= 1 && n <= SHORTCUTS ? visibleTemplates()[n - 1] : null;
    if (!t) return false;
    if (insertIt) insert(t);
    else copy(t);
    return true;
  }

  return { render, shortcut };
}
