// The agent sidebar's entry point: the conversation on one side, live suggestions on the other. This
// module only wires the parts together (plain ES modules, no build step):
//   settings.js      API key          conversation.js  turns, reply box, paste, demos
//   panel.js         suggestions      templates.js     template cards (inside the panel)
//   feedback.js      feedback events  limits.js        the server's request limits
//   state.js         the shared store api.js           HTTP client and the suggest scheduler

import { createClient, SuggestScheduler } from "./api.js";
import { createConversation, customerProfile } from "./conversation.js";
import { FeedbackLog } from "./feedback.js";
import { createLimitsLoader, trimTurns } from "./limits.js";
import { createPanel } from "./panel.js";
import { createSettings } from "./settings.js";
import { apiConversation, hasCustomerTurn, state } from "./state.js";

const TOP_K = 3;

const settings = createSettings({ onSaved: onKeySaved });
const client = createClient({ getKey: settings.key });
const feedback = new FeedbackLog({ client, getConversation: apiConversation, sessionId: state.sessionId });

const limits = createLimitsLoader({
  fetchLimits: () => client.limits(),
  getLimits: () => state.limits,
  onChange: (next) => {
    state.limits = next;
    conversation.applyLimits(next);
  },
  // The first request of the page is the limits one: a key the server refuses (a production server
  // does not take the prefilled development key) says so at once, not at the first customer turn.
  onError: (err) => {
    if (err && err.kind === "auth" && !state.result) {
      state.error = err;
      panel.render();
    }
  },
});

const scheduler = new SuggestScheduler({
  delayMs: 300,
  // The payload keeps every turn; it is cut to the limits only once they are known (a request made
  // while the sidebar starts, or right after a key change, waits for them).
  buildPayload: () => (hasCustomerTurn() ? { conversation: state.turns.slice(), customer: customerProfile(), top_k: TOP_K } : null),
  fetchSuggest: async (payload, signal) => {
    await limits.settled();
    const { conversation: turns, top_k: topK, ...rest } = payload;
    return client.suggest({ ...rest, conversation: trimTurns(turns, state.limits), top_k: Math.min(topK, state.limits.max_top_k),
      session_id: state.sessionId }, signal);
  },
  onStart: () => {
    state.loading = true;
    panel.renderLoading();
  },
  onResult: (data, meta) => {
    Object.assign(state, { loading: false, error: null, result: data, roundTripMs: meta.roundTripMs });
    panel.render();
    panel.markShown();
  },
  onError: (err) => {
    Object.assign(state, { loading: false, error: err });
    panel.render();
  },
});

function retry() {
  state.error = null;
  panel.renderError();
  panel.renderStatus();
  scheduler.run();
}

const panel = createPanel({
  client,
  feedback,
  hasKey: () => Boolean(settings.key()),
  openSettings: settings.open,
  retry,
  insertReply: (text) => conversation.insertReply(text),
});

const conversation = createConversation({
  onCustomerChange: () => scheduler.schedule(),
  onReset: () => {
    scheduler.cancel();
    feedback.reset(state.sessionId);
    panel.render();
    if (hasCustomerTurn()) scheduler.run();
  },
  onAgentSend: (text) => {
    const ins = state.inserted;
    if (!ins) return;
    if (text !== ins.text.trim()) feedback.edited({ kind: "template", id: ins.id }, ins.ctx, text);
    state.inserted = null;
  },
});

// Another key may mean another deployment with other limits.
function onKeySaved() {
  limits.refresh();
  if (state.error || (hasCustomerTurn() && !state.result)) retry();
  else panel.renderStatus();
}

function onKeydown(e) {
  if (e.altKey && !e.ctrlKey && !e.metaKey && /^Digit[1-9]$/.test(e.code)) {
    if (panel.shortcut(Number(e.code.slice(5)), e.shiftKey)) e.preventDefault();
  }
}

function init() {
  document.addEventListener("keydown", onKeydown);
  limits.refresh();
  if (!conversation.loadDemo(new URLSearchParams(location.search).get("demo"))) {
    conversation.render();
    panel.render();
  }
  document.documentElement.dataset.ready = "true";
}

// For tests and debugging in the console.
window.assistSidebar = { state, feedback, scheduler, limits };

init();
