// DOM helpers shared by the sidebar's parts. Text always goes in as text nodes, never as HTML, so KB
// and customer text cannot inject markup.

/** The element with this id. */
export const $ = (id) => document.getElementById(id);

/** el("div", {class: "x", onclick: f}, "text", child): attributes and children, text as text nodes. */
export function el(tag, attrs = {}, ...children) {
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

let toastTimer = null;

/** A short message at the bottom; kind "ok" or "warn". */
export function toast(message, kind = "ok") {
  const t = $("toast");
  t.textContent = message;
  t.dataset.kind = kind;
  t.classList.add("show");
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => t.classList.remove("show"), 2200);
}

/** [title, detail] to show the agent for an ApiError. */
export function errorText(err) {
  if (err.kind === "auth") return ["API key 无效，请在设置中更新", `服务器返回 ${err.status}：${err.message}`];
  if (err.kind === "down") {
    const why = err.status ? `服务器返回 ${err.status}：${err.message}` : err.message;
    return ["assist 服务暂时不可用（网络错误或服务未就绪），请稍后重试", why];
  }
  if (err.kind === "client") return ["请求被拒绝", `${err.status}：${err.message}`];
  return ["assist 服务出错，请重试", `${err.status}：${err.message}`];
}

/**
 * Copies `text`; true when it worked. navigator.clipboard needs a secure context and permission, so
 * http pages and older browsers fall back to a hidden textarea and execCommand.
 */
export async function copyText(text) {
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

/**
 * The focused control inside `container` (by its data-focus-key) and its selection, so a re-render
 * does not throw the agent's cursor out of the field being typed in.
 */
export function rememberFocus(container) {
  const a = document.activeElement;
  if (!a || !container.contains(a) || !a.dataset.focusKey) return null;
  return { key: a.dataset.focusKey, start: a.selectionStart, end: a.selectionEnd };
}

/** Puts the focus (and selection) from rememberFocus() back on the re-rendered control. */
export function restoreFocus(container, focus) {
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
