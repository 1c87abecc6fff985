// Feedback events (POST /v1/feedback): what the agent was shown, used, dismissed or edited. They are
// fire-and-forget: a lost event is logged, never shown to the agent in the middle of a conversation.

/** Every method takes `item` = {kind: "article" | "template", id}, the suggestion the event is about. */
export class FeedbackLog {
  /**
   * client: the api.js client (its feedback() call); getConversation() -> [{role, text}] as the API
   * accepts it (within the server's limits), attached to every event but "shown".
   */
  constructor({ client, getConversation, sessionId }) {
    this.client = client;
    this.getConversation = getConversation;
    this.sent = []; // {event, suggestion_id, kind, status} for tests and debugging
    this.reset(sessionId);
  }

  /** A new conversation: "shown" counts again and latencies start over. */
  reset(sessionId) {
    this.sessionId = sessionId;
    this.shownAt = new Map(); // "kind:id" -> performance.now() when first shown in this conversation
  }

  /** "shown", once per suggestion per conversation; later events measure their latency from it. */
  shown(item, ctx) {
    const key = `${item.kind}:${item.id}`;
    if (this.shownAt.has(key)) return;
    this.shownAt.set(key, performance.now());
    this.post("shown", item, ctx);
  }

  /** "used": the agent copied or inserted `text`. */
  used(item, ctx, text) {
    this.post("used", item, ctx, { text });
  }

  /** "dismissed": the agent ✕'d the card. */
  dismissed(item, ctx) {
    this.post("dismissed", item, ctx);
  }

  /** "edited": the agent changed a template to `text` (in its card, or in the reply box before sending). */
  edited(item, ctx, text) {
    this.post("edited", item, ctx, { text });
  }

  /** Any event; ctx is {intent, index_version, request_id, arm} of the result the suggestion came from. */
  post(event, item, ctx, { text, withConversation = event !== "shown" } = {}) {
    const shownAt = this.shownAt.get(`${item.kind}:${item.id}`);
    const conversation = withConversation ? this.getConversation() : [];
    const body = {
      event,
      suggestion_id: item.id,
      kind: item.kind,
      intent: ctx.intent || undefined,
      index_version: ctx.index_version || undefined,
      request_id: ctx.request_id || undefined,
      arm: ctx.arm || undefined,
      // the schema's latency: time from the suggestion being shown to this action
      latency_ms: shownAt == null ? undefined : Math.max(0, Math.round(performance.now() - shownAt)),
      session_id: this.sessionId,
      conversation: conversation.length ? conversation : undefined,
      text: text ? text.slice(0, 8000) : undefined,
    };
    const record = { event, suggestion_id: item.id, kind: item.kind, status: "pending" };
    this.sent.push(record);
    this.client.feedback(body).then(
      () => (record.status = "ok"),
      (err) => {
        record.status = "error";
        console.warn("assist: feedback not recorded", event, item.id, err.message);
      },
    );
  }
}
