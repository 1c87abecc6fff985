// The sidebar's one shared store. Modules read and write these fields directly; everything that is
// "per conversation" is reset together by resetConversation(), so a new conversation never inherits
// dismissals, typed values or edits from the last one.
//
// Shape:
//   sessionId   string                 feedback groups events by it; new for every conversation
//   turns       [{role, text, ts}]     the conversation as shown, oldest first
//   result      object | null          the latest /v1/suggest response shown
//   roundTripMs number | null          how long that response took, as the agent felt it
//   loading     boolean                a suggest request is in flight
//   error       ApiError | null        the latest suggest request failed with it
//   dismissed   Set<"kind:id">         ✕'d cards ("article:id" / "template:id")
//   fills       {name: value}          template variables typed by the agent (shared by all cards)
//   edits       {templateId: text}     templates as the agent edited them
//   editing     templateId | null      the template whose text is open for editing
//   inserted    {id, text, ctx} | null the template last put into the reply box
//   replay      {cancelled} | null     a demo being replayed
//   limits      {max_turns, max_turn_chars, max_top_k}  what the server accepts (see limits.js)

import { DEFAULT_LIMITS, trimTurns } from "./limits.js";

function newSessionId() {
  const rand = Math.random().toString(36).slice(2, 8);
  return `conv-${Date.now().toString(36)}-${rand}`;
}

function conversationFields() {
  return {
    sessionId: newSessionId(),
    turns: [],
    result: null,
    roundTripMs: null,
    loading: false,
    error: null,
    dismissed: new Set(),
    fills: {},
    edits: {},
    editing: null,
    inserted: null,
    replay: null,
  };
}

export const state = { ...conversationFields(), limits: { ...DEFAULT_LIMITS } };

/** Start a new conversation with `turns` ([{role, text, ts}]); the limits survive it. */
export function resetConversation(turns = []) {
  Object.assign(state, conversationFields(), { turns });
}

/** True when a customer has said something: suggestions need a customer turn. */
export function hasCustomerTurn() {
  return state.turns.some((t) => t.role === "customer" && t.text.trim());
}

/** The conversation as the API accepts it: the latest turns, each cut to the configured length. */
export function apiConversation() {
  return trimTurns(state.turns, state.limits);
}

/** Intent and index version of the shown result: feedback events carry them. */
export function resultContext() {
  const r = state.result;
  return { intent: r ? r.intent.name : null, index_version: r ? r.index_version : null, request_id: r ? r.request_id : null, arm: r ? r.arm : null };
}

/** Answers of the shown result that the agent has not dismissed. */
export function visibleAnswers() {
  return state.result ? state.result.answers.filter((a) => !state.dismissed.has(`article:${a.article_id}`)) : [];
}

/** Templates of the shown result that the agent has not dismissed. */
export function visibleTemplates() {
  return state.result ? state.result.templates.filter((t) => !state.dismissed.has(`template:${t.template_id}`)) : [];
}
