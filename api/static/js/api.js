// The assist HTTP API as the sidebar uses it, and the "latest request wins" suggest scheduler.

/** kind: "auth" (401/403), "down" (network error, timeout, 502-504), "client" (other 4xx), "server" (5xx). */
export class ApiError extends Error {
  constructor(kind, status, code, message) {
    super(message);
    this.name = "ApiError";
    this.kind = kind;
    this.status = status;
    this.code = code;
  }
}

export function isAbort(err) {
  return err && (err.name === "AbortError" || err.kind === "aborted");
}

/**
 * A small client: `getKey()` is read on every call so a key changed in the settings applies at once.
 * Errors are ApiError; an abort by the caller's signal is re-thrown as it is (name "AbortError").
 */
export function createClient({ getKey, base = "", timeoutMs = 10000 } = {}) {
  async function request(method, path, { body, signal, keepalive = false } = {}) {
    const ctrl = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      ctrl.abort();
    }, timeoutMs);
    const onAbort = () => ctrl.abort();
    if (signal) {
      if (signal.aborted) ctrl.abort();
      else signal.addEventListener("abort", onAbort, { once: true });
    }
    let res;
    try {
      const headers = { Accept: "application/json", "X-API-Key": getKey() || "" };
      if (body !== undefined) headers["Content-Type"] = "application/json";
      const json = body === undefined ? undefined : JSON.stringify(body);
      res = await fetch(base + path, {
        method,
        headers,
        body: json,
        signal: ctrl.signal,
        // keepalive lets feedback outlive a closing tab, but browsers cap such bodies at 64 KiB
        keepalive: keepalive && new TextEncoder().encode(json || "").length < 60000,
        cache: "no-store",
      });
    } catch (err) {
      if (timedOut) throw new ApiError("down", 0, "timeout", `请求超时（${Math.round(timeoutMs / 1000)} 秒）`);
      if (signal && signal.aborted) throw err;
      throw new ApiError("down", 0, "network_error", "网络错误，无法连接 assist 服务");
    } finally {
      clearTimeout(timer);
      if (signal) signal.removeEventListener("abort", onAbort);
    }
    let data = null;
    try {
      data = await res.json();
    } catch {
      data = null;
    }
    if (res.ok) return data;
    const err = (data && data.error) || {};
    const message = err.message || `HTTP ${res.status}`;
    const s = res.status;
    const kind = s === 401 || s === 403 ? "auth" : s === 502 || s === 503 || s === 504 ? "down" : s >= 500 ? "server" : "client";
    throw new ApiError(kind, s, err.code || `http_${s}`, message);
  }

  return {
    suggest: (payload, signal) => request("POST", "/v1/suggest", { body: payload, signal }),
    feedback: (event) => request("POST", "/v1/feedback", { body: event, keepalive: true }),
    article: (id, signal) => request("GET", `/v1/articles/${encodeURIComponent(id)}`, { signal }),
    template: (id, signal) => request("GET", `/v1/templates/${encodeURIComponent(id)}`, { signal }),
    limits: (signal) => request("GET", "/v1/limits", { signal }),
  };
}

/**
 * Debounced suggest calls where only the latest request counts: a new call aborts the one in flight,
 * and any response that is not from the latest request is dropped, whatever order responses arrive in.
 *
 * fetchSuggest(payload, signal) -> Promise<response>; buildPayload() is called when the request starts,
 * so it always sends the conversation as it is then. Callbacks: onStart(), onResult(data, meta), onError(err).
 */
export class SuggestScheduler {
  constructor({ fetchSuggest, buildPayload, onStart, onResult, onError, delayMs = 300 }) {
    Object.assign(this, { fetchSuggest, buildPayload, onStart, onResult, onError, delayMs });
    this.seq = 0;
    this.timer = null;
    this.ctrl = null;
    this.dropped = 0; // responses that arrived after a newer request started (for tests and debugging)
  }

  schedule(delayMs = this.delayMs) {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.run(), delayMs);
  }

  /** Forget everything in flight (e.g. a new conversation). */
  cancel() {
    clearTimeout(this.timer);
    this.seq++;
    if (this.ctrl) this.ctrl.abort();
    this.ctrl = null;
  }

  async run() {
    clearTimeout(this.timer);
    const payload = this.buildPayload();
    if (!payload) return;
    const mine = ++this.seq;
    if (this.ctrl) this.ctrl.abort();
    const ctrl = (this.ctrl = new AbortController());
    const started = performance.now();
    this.onStart && this.onStart();
    try {
      const data = await this.fetchSuggest(payload, ctrl.signal);
      if (mine !== this.seq) {
        this.dropped++;
        return;
      }
      this.ctrl = null;
      this.onResult(data, { roundTripMs: performance.now() - started, payload });
    } catch (err) {
      if (mine !== this.seq || isAbort(err)) {
        this.dropped++;
        return;
      }
      this.ctrl = null;
      this.onError(err);
    }
  }
}
