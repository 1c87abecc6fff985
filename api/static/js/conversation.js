// The conversation pane: customer profile, the turns list, the composer, pasted transcripts, demo
// replays and "clear". It owns state.turns; what the turns mean for suggestions is the caller's business.

import { DEMOS, findDemo } from "./demos.js";
import { hasCustomerTurn, resetConversation, state } from "./state.js";
import { parseTranscript } from "./text.js";
import { $, el, toast } from "./ui.js";

const ROLE_LABEL = { customer: "客户", agent: "客服", system: "系统" };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function timeLabel(ts) {
  const d = new Date(ts);
  return `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
}

/** The customer profile form as the API takes it (blank fields left out). */
export function customerProfile() {
  const profile = { name: $("cust-name").value.trim(), tier: $("cust-tier").value, order_id: $("cust-order").value.trim() };
  return Object.fromEntries(Object.entries(profile).filter(([, v]) => v));
}

function setProfile(p = {}) {
  $("cust-name").value = p.name || "";
  $("cust-tier").value = p.tier === "VIP" ? "VIP" : "普通";
  $("cust-order").value = p.order_id || "";
}

/**
 * Wires the pane. Callbacks:
 *   onCustomerChange()  a customer turn was added, or the profile changed while a customer has spoken
 *   onReset()           a new conversation is in state (new session id, its turns rendered)
 *   onAgentSend(text)   the agent is about to send `text` from the reply box as an agent turn
 * Returns { addTurn(role, text), load(turns, profile), loadDemo(id) -> bool, insertReply(text), render(),
 *           applyLimits(limits) }.
 */
export function createConversation({ onCustomerChange, onReset, onAgentSend }) {
  const maxChars = () => state.limits.max_turn_chars;

  function renderTurn(turn) {
    $("messages").append(el("li", { class: `msg ${turn.role}` },
      el("span", { class: "who" }, ROLE_LABEL[turn.role] || turn.role),
      el("p", { class: "bubble" }, turn.text),
      el("time", { datetime: new Date(turn.ts).toISOString() }, timeLabel(turn.ts))));
  }

  function scrollMessages() {
    const box = $("messages");
    box.scrollTop = box.scrollHeight;
  }

  /** Re-draws the turns list from state.turns. */
  function render() {
    $("messages").replaceChildren();
    if (!state.turns.length) {
      $("messages").append(el("li", { class: "msg-empty" }, "还没有消息。选择一个演示对话回放，粘贴对话记录，或在下方以客户身份输入。"));
    }
    state.turns.forEach(renderTurn);
    scrollMessages();
  }

  /** Appends a turn (cut to the server's turn length); a customer turn calls onCustomerChange. */
  function addTurn(role, text) {
    const clean = String(text || "").trim().slice(0, maxChars());
    if (!clean) return;
    if (!state.turns.length) $("messages").replaceChildren();
    const turn = { role, text: clean, ts: Date.now() };
    state.turns.push(turn);
    renderTurn(turn);
    scrollMessages();
    if (role === "customer") onCustomerChange();
  }

  function stopReplay() {
    if (state.replay) state.replay.cancelled = true;
    state.replay = null;
    $("demo-play").textContent = "▶ 回放";
  }

  /** A fresh conversation made of `turns` ([{role, text}]), with `profile` in the form when given. */
  function load(turns = [], profile = null) {
    stopReplay();
    if (profile) setProfile(profile);
    const now = Date.now();
    // Spread the timestamps so a pasted or demo conversation reads as one that happened.
    resetConversation(turns.map((t, i) => ({ role: t.role, text: String(t.text).slice(0, maxChars()), ts: now - (turns.length - i) * 1000 })));
    render();
    onReset();
  }

  async function replayDemo(demo) {
    load([], demo.customer);
    const run = (state.replay = { cancelled: false });
    $("demo-play").textContent = "■ 停止";
    for (const [i, turn] of demo.turns.entries()) {
      if (i) await sleep(turn.role === "customer" ? 900 : 600);
      if (run.cancelled) return;
      addTurn(turn.role, turn.text);
    }
    if (state.replay === run) stopReplay();
  }

  /** Loads the demo `id` at once (no replay); false when there is no such demo. */
  function loadDemo(id) {
    const demo = findDemo(id);
    if (!demo) return false;
    $("demo-select").value = demo.id;
    load(demo.turns, demo.customer);
    return true;
  }

  /** Puts `text` in the reply box as the agent's, ready to edit and send. */
  function insertReply(text) {
    const box = $("composer-text");
    box.value = text;
    document.querySelector('input[name="role"][value="agent"]').checked = true;
    box.focus();
    box.setSelectionRange(box.value.length, box.value.length);
  }

  /** Keeps the reply box from taking more than the server accepts in one turn. */
  function applyLimits(limits) {
    $("composer-text").maxLength = limits.max_turn_chars;
  }

  function sendFromComposer() {
    const box = $("composer-text");
    const text = box.value.trim();
    if (!text) return;
    const role = document.querySelector('input[name="role"]:checked').value;
    if (role === "agent") onAgentSend(text);
    addTurn(role, text);
    box.value = "";
    box.focus();
  }

  function showPaste(show) {
    $("paste-box").hidden = !show;
    $("paste-toggle").setAttribute("aria-expanded", String(show));
    if (show) $("paste-text").focus();
  }

  for (const d of DEMOS) $("demo-select").append(el("option", { value: d.id }, d.title));
  $("demo-play").addEventListener("click", () => {
    if (state.replay) return stopReplay();
    const demo = findDemo($("demo-select").value);
    if (demo) replayDemo(demo);
  });
  // A cleared conversation is the next customer's: nothing of the last one (profile, fills, edits,
  // results) may reach a reply to them.
  $("chat-clear").addEventListener("click", () => load([], {}));
  $("paste-toggle").addEventListener("click", () => showPaste($("paste-box").hidden));
  $("paste-cancel").addEventListener("click", () => showPaste(false));
  $("paste-box").addEventListener("submit", (e) => {
    e.preventDefault();
    const turns = parseTranscript($("paste-text").value);
    if (!turns.length) return toast("没有识别到对话内容", "warn");
    showPaste(false);
    $("paste-text").value = "";
    load(turns);
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
    $(id).addEventListener("input", () => hasCustomerTurn() && onCustomerChange());
  }

  return { addTurn, load, loadDemo, insertReply, render, applyLimits };
}
