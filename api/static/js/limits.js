// The request limits the server is configured with (GET /v1/limits). An operator may lower them
// (ASSIST_MAX_TURNS, ASSIST_MAX_TURN_CHARS), and a request over them is a 422, so the sidebar trims what it
// sends to what the server says rather than to numbers of its own.

/** The API's own defaults: used until the server has told us, and whenever it cannot. */
export const DEFAULT_LIMITS = Object.freeze({ max_turns: 50, max_turn_chars: 2000, max_top_k: 20 });

/** The latest `limits.max_turns` turns as {role, text}, each text cut to `limits.max_turn_chars`. */
export function trimTurns(turns, limits = DEFAULT_LIMITS) {
  return turns.slice(-limits.max_turns).map((t) => ({ role: t.role, text: t.text.slice(0, limits.max_turn_chars) }));
}

/** The known fields of a /v1/limits response that are positive integers, over `base` (a bad value keeps the old one). */
export function mergeLimits(base, data) {
  const out = { ...base };
  for (const key of Object.keys(DEFAULT_LIMITS)) {
    const v = data && data[key];
    if (Number.isInteger(v) && v > 0) out[key] = v;
  }
  return out;
}

/**
 * Loads the limits: `refresh()` when the sidebar starts and whenever the API key changes.
 * fetchLimits() -> Promise<response>; onChange(limits) gets the merged limits after each successful load;
 * onError(err) hears of a failed one (a rejected key shows before the first conversation does).
 * A failed load is only logged: the sidebar keeps the limits it had (the defaults at first), and a
 * request over the real limits then shows the server's 422 like any other error.
 * `settled(maxWaitMs)` resolves once the latest load is over, or after maxWaitMs, whichever is first,
 * so a suggest request can wait for the limits without hanging on a slow server.
 */
export function createLimitsLoader({ fetchLimits, getLimits, onChange, onError = () => {} }) {
  let seq = 0;
  let pending = Promise.resolve();

  function refresh() {
    const mine = ++seq;
    pending = fetchLimits().then(
      (data) => {
        if (mine === seq) onChange(mergeLimits(getLimits(), data));
      },
      (err) => {
        if (mine !== seq) return;
        console.warn("assist: limits not loaded, keeping", getLimits(), err && err.message);
        onError(err);
      },
    );
    return pending;
  }

  function settled(maxWaitMs = 3000) {
    let timer;
    const wait = new Promise((resolve) => (timer = setTimeout(resolve, maxWaitMs)));
    return Promise.race([pending, wait]).finally(() => clearTimeout(timer));
  }

  return { refresh, settled };
}
