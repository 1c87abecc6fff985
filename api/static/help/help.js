// The customer help centre (GET /help): topics, search-as-you-type, articles with a "was this helpful?"
// vote. One plain ES module, no build step, no request outside this origin. KB and customer text reach
// the DOM only as text nodes; the one HTML string inserted is an article body, which the server renders
// from the public sections and sanitises.
//
// Routes (hash, so Back works inside an iframe too): #/  #/c/<category>  #/a/<article id>  #/s/<query>

const BROWSE_LIMIT = 50;
const DEBOUNCE_MS = 250;
const TIMEOUT_MS = 10000;
const COMMENT_MAX = 500;
const SESSION_KEY = "assist.help.session";

// --- UI strings: every string of the page in both languages --------------------------------------------

const plural = (n, one, many) => (Number(n) === 1 ? one : many);

const STRINGS = {
  zh: {
    title: "帮助中心",
    skip: "跳到主要内容",
    breadcrumb: "位置",
    searchLabel: "搜索帮助文章",
    searchPlaceholder: "例如：退款多久到账",
    loading: "加载中…",
    stillNeedHelp: "还需要帮助？",
    contactUs: "联系我们",
    contactCta: "联系客服",
    topics: "按分类浏览",
    noTopics: "暂时还没有帮助文章。",
    count: ({ n }) => `${n} 篇`,
    allTopics: "全部分类",
    topicEmpty: "这个分类下暂时没有文章。",
    results: ({ q }) => `“${q}”的搜索结果`,
    found: ({ n }) => `找到 ${n} 篇相关文章`,
    matchedQuestion: "匹配问题：",
    noAnswer: "抱歉，没有找到合适的答案",
    noAnswerText: "换个说法再试试，或者直接联系我们的客服，我们很乐意帮您。",
    browseAll: "浏览全部分类",
    updated: ({ d }) => `更新于 ${d}`,
    helpful: "这篇文章有帮助吗？",
    yes: "是",
    no: "否",
    commentLabel: "哪里可以改进？（选填）",
    charsLeft: ({ n }) => `还可输入 ${n} 字`,
    send: "发送",
    sending: "发送中…",
    thanksYes: "感谢您的反馈！",
    thanksNo: "感谢反馈，我们会继续改进这篇文章。",
    sendFailed: "反馈没有发送成功，请稍后再试。",
    related: "相关文章",
    notFound: "找不到这篇文章",
    notFoundText: "它可能已被移除或改名。可以搜索一下，或浏览全部分类。",
    backHome: "返回帮助中心首页",
    errorTitle: "页面没有加载成功",
    tooLongTitle: "搜索内容太长",
    retry: "重试",
    rateLimited: ({ n }) => `操作太频繁了，请 ${n} 秒后再试。`,
    tooLong: ({ n }) => `搜索内容太长了，最多 ${n} 个字。`,
    network: "网络连接出了问题，请检查网络后重试。",
    server: "服务暂时出了点问题，请稍后再试。",
  },
  en: {
    title: "Help Centre",
    skip: "Skip to main content",
    breadcrumb: "Breadcrumb",
    searchLabel: "Search help articles",
    searchPlaceholder: "Type your question, e.g. 退款多久到账",
    loading: "Loading…",
    stillNeedHelp: "Still need help?",
    contactUs: "Contact us",
    contactCta: "Contact support",
    topics: "Browse by topic",
    noTopics: "There are no help articles yet.",
    count: ({ n }) => `${n} ${plural(n, "article", "articles")}`,
    allTopics: "All topics",
    topicEmpty: "There are no articles in this topic yet.",
    results: ({ q }) => `Results for “${q}”`,
    found: ({ n }) => `${n} ${plural(n, "article", "articles")} found`,
    matchedQuestion: "Matching question: ",
    noAnswer: "Sorry, we couldn’t find a good answer",
    noAnswerText: "Try different words, or contact our support team — we’re happy to help.",
    browseAll: "Browse all topics",
    updated: ({ d }) => `Updated ${d}`,
    helpful: "Was this helpful?",
    yes: "Yes",
    no: "No",
    commentLabel: "What could be better? (optional)",
    charsLeft: ({ n }) => `${n} ${plural(n, "character", "characters")} left`,
    send: "Send",
    sending: "Sending…",
    thanksYes: "Thanks for your feedback!",
    thanksNo: "Thanks — we’ll use this to improve the article.",
    sendFailed: "Your feedback wasn’t sent. Please try again later.",
    related: "Related articles",
    notFound: "Article not found",
    notFoundText: "It may have been moved or removed. Try a search, or browse all topics.",
    backHome: "Back to the Help Centre home",
    errorTitle: "This page didn’t load",
    tooLongTitle: "Search too long",
    retry: "Try again",
    rateLimited: ({ n }) => `Too many requests — please try again in ${n} ${plural(n, "second", "seconds")}.`,
    tooLong: ({ n }) => `That search is too long: at most ${n} characters.`,
    network: "We couldn’t connect. Please check your connection and try again.",
    server: "Something went wrong on our side. Please try again later.",
  },
};

const HTML_LANG = { zh: "zh-CN", en: "en" };

function pickLang() {
  const asked = new URLSearchParams(location.search).get("lang") || navigator.language || "";
  return /^zh/i.test(asked) ? "zh" : /^en/i.test(asked) ? "en" : /^zh/i.test(navigator.language || "") ? "zh" : "en";
}

// --- state ---------------------------------------------------------------------------------------------
//   view     {route, data} | {route, error}  what #view shows; repainted as it is when the language changes
//   votes    Map article id -> {helpful, sent, sending, failed, comment}
//   query    the search shown, or the one that led to the article shown (sent with its feedback; kept in
//            history.state of the article's entry, so Back and Forward keep it right)
//   pending  the route being loaded, if any

const state = {
  lang: pickLang(),
  session: sessionId(),
  contactUrl: "/help/contact",
  maxQueryChars: 100,
  view: null,
  votes: new Map(),
  query: null,
  pending: null,
  notice: null,
};

function t(key, vars = {}) {
  const s = STRINGS[state.lang][key] ?? STRINGS.zh[key] ?? key;
  return typeof s === "function" ? s(vars) : s;
}

function sessionId() {
  let id = null;
  try {
    id = sessionStorage.getItem(SESSION_KEY);
  } catch {
    /* storage blocked (e.g. a third-party iframe): one id per page load then */
  }
  if (id && /^[A-Za-z0-9_-]{22}$/.test(id)) return id;
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  id = btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  try {
    sessionStorage.setItem(SESSION_KEY, id);
  } catch {
    /* see above */
  }
  return id;
}

// --- DOM helpers ---------------------------------------------------------------------------------------

const $ = (id) => document.getElementById(id);

/** el("a", {href, class, onclick}, "text", child): attributes and children; strings become text nodes. */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c != null && c !== false) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

const REGEX_SPECIAL = /[.*+?^${}()|[\]\\]/g;

/** Terms worth marking, longest first: single characters are dropped when a longer term exists. */
function markTerms(terms) {
  const clean = [...new Set((terms || []).map((x) => String(x).trim()).filter(Boolean))];
  const long = clean.filter((x) => [...x].length > 1);
  return (long.length ? long : clean).sort((a, b) => b.length - a.length);
}

/** `text` as text nodes with every matched term wrapped in <mark> (nothing is parsed as HTML). */
function highlighted(text, terms) {
  const frag = document.createDocumentFragment();
  const clean = markTerms(terms);
  text = String(text ?? "");
  if (!clean.length) {
    frag.append(text);
    return frag;
  }
  const rx = new RegExp(clean.map((x) => x.replace(REGEX_SPECIAL, "\\$&")).join("|"), "giu");
  let last = 0;
  for (const m of text.matchAll(rx)) {
    if (m.index > last) frag.append(text.slice(last, m.index));
    frag.append(el("mark", {}, m[0]));
    last = m.index + m[0].length;
  }
  if (last < text.length) frag.append(text.slice(last));
  return frag;
}

/** The "contact us" link: the server records the click (with the article read, if any), then redirects. */
function contactHref() {
  const p = new URLSearchParams({ session: state.session });
  const v = state.view;
  if (v && v.route.name === "article" && v.data) p.set("article", v.data.id);
  return `${state.contactUrl}${state.contactUrl.includes("?") ? "&" : "?"}${p}`;
}

function contactLink(cls, key = "contactUs") {
  return el("a", { class: cls, href: contactHref(), target: "_top" }, t(key));
}

// --- API client ----------------------------------------------------------------------------------------

/** kind: "rate" (429), "network", "notfound" (404), "tooLong" (query_too_long), "client" (other 4xx), "server". */
class HelpError extends Error {
  constructor(kind, status, code, message, retryAfter = 0) {
    super(message || code);
    Object.assign(this, { name: "HelpError", kind, status, code, retryAfter });
  }
}

const isAbort = (err) => err && err.name === "AbortError";
let blockedUntil = 0; // after a 429 nothing is sent until Retry-After has passed
const cache = new Map(); // GET path -> response, so Back and a language switch cost no request

function retryAfterSeconds(header) {
  const v = (header || "").trim();
  const n = /^\d+$/.test(v) ? Number(v) : Math.ceil((Date.parse(v) - Date.now()) / 1000);
  return Number.isFinite(n) && n > 0 ? Math.min(n, 3600) : 5;
}

async function request(path, { method = "GET", body, signal, keepalive = false } = {}) {
  if (method === "GET" && cache.has(path)) return cache.get(path);
  const wait = blockedUntil - Date.now();
  if (wait > 0) throw new HelpError("rate", 429, "rate_limited", "", Math.ceil(wait / 1000));
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(), TIMEOUT_MS);
  const onAbort = () => ctrl.abort();
  if (signal) signal.addEventListener("abort", onAbort, { once: true });
  let res;
  let data = null;
  try {
    const headers = { Accept: "application/json", "X-Help-Session": state.session };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: ctrl.signal, keepalive });
    data = await res.json().catch(() => null);
  } catch (err) {
    if (signal && signal.aborted) throw err;
    throw new HelpError("network", 0, "network_error", String(err));
  } finally {
    clearTimeout(timer);
    if (signal) signal.removeEventListener("abort", onAbort);
  }
  if (signal && signal.aborted) throw new DOMException("aborted", "AbortError");
  if (res.ok) {
    if (method === "GET") {
      cache.set(path, data);
      if (cache.size > 40) cache.delete(cache.keys().next().value);
    }
    return data;
  }
  const e = (data && data.error) || {};
  if (res.status === 429) {
    const n = retryAfterSeconds(res.headers.get("Retry-After"));
    blockedUntil = Date.now() + n * 1000;
    throw new HelpError("rate", 429, e.code || "rate_limited", e.message, n);
  }
  const kind = res.status === 404 ? "notfound" : e.code === "query_too_long" ? "tooLong" : res.status >= 500 ? "server" : "client";
  throw new HelpError(kind, res.status, e.code || `http_${res.status}`, e.message);
}

const api = {
  categories: (signal) => request("/v1/public/categories", { signal }),
  // without a limit the server's configured number of results (ASSIST_PUBLIC_RESULTS)
  search: ({ q = "", category = null, limit = null }, signal) => {
    const p = new URLSearchParams({ q });
    if (category) p.set("category", category);
    if (limit) p.set("limit", String(limit));
    return request(`/v1/public/search?${p}`, { signal });
  },
  article: (id, signal) => request(`/v1/public/articles/${encodeURIComponent(id)}`, { signal }),
  feedback: (payload, keepalive = false) => request("/v1/public/feedback", { method: "POST", body: payload, keepalive }),
};

// --- the notice (rate limits and other errors), an aria-live region ------------------------------------

let noticeTimer = null;

function setNotice(key, vars = {}, clearAfterS = 0) {
  state.notice = { key, vars };
  paintNotice();
  clearTimeout(noticeTimer);
  if (clearAfterS) noticeTimer = setTimeout(() => clearNotice(), clearAfterS * 1000);
}

function clearNotice(key = null) {
  if (key && (!state.notice || state.notice.key !== key)) return;
  clearTimeout(noticeTimer);
  state.notice = null;
  paintNotice();
}

function paintNotice() {
  const n = state.notice;
  $("notice").textContent = n ? t(n.key, n.vars) : "";
  $("notice").dataset.kind = n ? n.key : "";
}

function noticeFor(err) {
  if (err.kind === "rate") setNotice("rateLimited", { n: err.retryAfter }, err.retryAfter);
}

// --- routing -------------------------------------------------------------------------------------------

const href = {
  home: () => "#/",
  category: (name) => `#/c/${encodeURIComponent(name)}`,
  article: (id) => `#/a/${encodeURIComponent(id)}`,
  search: (q) => `#/s/${encodeURIComponent(q)}`,
};

function parseRoute(hash) {
  const m = /^#\/([cas])\/(.+)$/s.exec(hash || "");
  if (!m) return { name: "home", arg: "" };
  let arg = m[2];
  try {
    arg = decodeURIComponent(arg);
  } catch {
    /* a hand-typed hash: take it as it is */
  }
  if (!arg.trim()) return { name: "home", arg: "" };
  return { name: { c: "category", a: "article", s: "search" }[m[1]], arg };
}

const sameRoute = (a, b) => a && b && a.name === b.name && a.arg === b.arg;

/** Go to `hash` without a hashchange event; `replace` keeps Back from stepping through every keystroke. */
function go(hash, { replace = false, focus = false } = {}) {
  if (location.hash !== hash) history[replace ? "replaceState" : "pushState"](null, "", hash);
  show({ focus });
}

let viewCtrl = null;
let retryTimer = null;

async function load(route, signal) {
  if (route.name === "home") return loadCategories(signal);
  if (route.name === "category") return api.search({ q: "", category: route.arg, limit: BROWSE_LIMIT }, signal);
  if (route.name === "article") return api.article(route.arg, signal);
  if ([...route.arg].length > state.maxQueryChars) throw new HelpError("tooLong", 422, "query_too_long", "");
  return api.search({ q: route.arg }, signal);
}

let categoriesPromise = null;

/** The categories response, fetched once: it also carries the contact URL and the query length limit. */
function loadCategories(signal) {
  if (!categoriesPromise) {
    categoriesPromise = api.categories().then((data) => {
      state.contactUrl = data.contact_url || state.contactUrl;
      if (data.max_query_chars > 0) state.maxQueryChars = data.max_query_chars;
      $("q").maxLength = state.maxQueryChars;
      $("contact-foot").href = contactHref();
      return data;
    });
    categoriesPromise.catch(() => (categoriesPromise = null));
  }
  return signal ? abortable(categoriesPromise, signal) : categoriesPromise;
}

function abortable(promise, signal) {
  return new Promise((resolve, reject) => {
    signal.addEventListener("abort", () => reject(new DOMException("aborted", "AbortError")), { once: true });
    promise.then(resolve, reject);
  });
}

/** Shows the route in the hash. focus: move the focus to the new view's heading (navigation, not typing). */
async function show({ focus = false } = {}) {
  const route = parseRoute(location.hash);
  if (state.view && state.view.route.name === "article" && !sameRoute(state.view.route, route)) flushVote(state.view.route.arg);
  syncSearchBox(route);
  if (viewCtrl) viewCtrl.abort();
  clearTimeout(retryTimer);
  const ctrl = (viewCtrl = new AbortController());
  state.pending = route;
  const main = $("view");
  main.setAttribute("aria-busy", "true");
  let next;
  try {
    next = { route, data: await load(route, ctrl.signal) };
    state.query = route.name === "search" ? route.arg : route.name === "article" ? (history.state && history.state.query) || null : null;
    clearNotice("rateLimited");
  } catch (err) {
    if (ctrl !== viewCtrl || isAbort(err)) return;
    next = { route, error: err };
    if (err.kind === "rate") {
      noticeFor(err);
      // try again by itself once the wait is over, if the reader is still here
      retryTimer = setTimeout(() => show(), err.retryAfter * 1000 + 50); // cleared by any newer show()
      // keep what is on screen (e.g. the last results while typing); only an empty page gets the message
      if (state.view && !state.view.error) next = null;
    }
  }
  if (ctrl !== viewCtrl) return;
  viewCtrl = null;
  state.pending = null;
  main.setAttribute("aria-busy", "false");
  if (next) {
    state.view = next;
    paint({ focus });
  }
  document.documentElement.dataset.ready = "true";
}

function syncSearchBox(route) {
  const box = $("q");
  if (route.name === "search") {
    if (box.value.trim() !== route.arg) box.value = route.arg;
  } else if (route.name !== "article") {
    box.value = "";
  }
}

// --- painting the views ---------------------------------------------------------------------------------

/** Repaints #view from state.view. */
function paint({ focus = false } = {}) {
  const { route, data, error } = state.view;
  const main = $("view");
  let title;
  let body;
  if (error) [title, body] = errorView(route, error);
  else if (route.name === "home") [title, body] = homeView(data);
  else if (route.name === "category") [title, body] = categoryView(route.arg, data);
  else if (route.name === "search") [title, body] = searchView(route.arg, data);
  else [title, body] = articleView(data);
  const heading = el("h2", { id: "view-title", class: "view-title", tabindex: "-1" }, title);
  main.replaceChildren(...body(heading));
  main.dataset.view = error ? "error" : route.name;
  $("contact-foot").href = contactHref();
  document.title = route.name === "home" && !error ? t("title") : `${title} · ${t("title")}`;
  if (route.name === "search" && data) {
    $("sr-status").textContent = data.abstained || !data.results.length ? t("noAnswer") : t("found", { n: data.results.length });
  }
  if (focus) {
    window.scrollTo(0, 0);
    heading.focus({ preventScroll: true });
  }
}

function homeView(data) {
  const cats = data.categories || [];
  const list = el(
    "ul",
    { class: "cats" },
    cats.map((c) =>
      el("li", {}, el("a", { class: "cat", href: href.category(c.name) }, el("span", { class: "cat-name" }, c.name), el("span", { class: "cat-count" }, t("count", { n: c.count })))),
    ),
  );
  return [t("topics"), (h) => [h, cats.length ? list : el("p", { class: "muted" }, t("noTopics"))]];
}

function crumbs(...links) {
  return el("nav", { class: "crumbs", "aria-label": t("breadcrumb") }, links);
}

function categoryView(name, data) {
  const back = crumbs(el("a", { class: "crumb", href: href.home() }, `‹ ${t("allTopics")}`));
  const results = data.results || [];
  return [name, (h) => [back, h, results.length ? resultList(results, false) : el("p", { class: "muted" }, t("topicEmpty"))]];
}

function searchView(q, data) {
  const results = data.results || [];
  if (data.abstained || !results.length) return [t("results", { q }), (h) => [h, noAnswer()]];
  return [t("results", { q }), (h) => [h, el("p", { class: "muted count" }, t("found", { n: results.length })), resultList(results, true)]];
}

function noAnswer() {
  return el(
    "div",
    { class: "no-answer" },
    el("p", { class: "no-answer-title" }, t("noAnswer")),
    el("p", {}, t("noAnswerText")),
    el("p", { class: "actions" }, contactLink("btn btn-primary contact-cta", "contactCta"), el("a", { class: "btn", href: href.home() }, t("browseAll"))),
  );
}

function resultList(results, marked) {
  return el(
    "ol",
    { class: "results" },
    results.map((r) => {
      const terms = marked ? r.matched_terms : [];
      const path = (r.heading_path || []).filter((p, i) => !(i === 0 && p === r.title));
      return el(
        "li",
        { class: "result", "data-id": r.id },
        el("h3", { class: "result-title" }, el("a", { href: href.article(r.id) }, highlighted(r.title, terms))),
        el("p", { class: "result-meta" }, [r.category, path.join(" › ")].filter(Boolean).join(" · ")),
        r.matched_question && el("p", { class: "matched-q" }, el("span", { class: "mq-label" }, t("matchedQuestion")), highlighted(r.matched_question, terms)),
        r.snippet && el("p", { class: "snippet" }, highlighted(r.snippet, terms)),
      );
    }),
  );
}

function errorView(route, err) {
  if (err.kind === "notfound" && route.name === "article") {
    return [t("notFound"), (h) => [h, el("p", {}, t("notFoundText")), el("p", { class: "actions" }, el("a", { class: "btn", href: href.home() }, t("backHome")))]];
  }
  const text =
    err.kind === "rate" ? t("rateLimited", { n: err.retryAfter }) :
    err.kind === "tooLong" ? t("tooLong", { n: state.maxQueryChars }) :
    err.kind === "network" ? t("network") : t("server");
  const retry = el("button", { type: "button", class: "btn", onclick: () => show({ focus: true }) }, t("retry"));
  if (err.kind === "tooLong") return [t("tooLongTitle"), (h) => [h, el("p", { class: "error-text" }, text)]];
  return [t("errorTitle"), (h) => [h, el("p", { class: "error-text" }, text), el("p", { class: "actions" }, retry)]];
}

/** The server's HTML of an article, parsed inert (a <template>) so images can be made lazy before they load. */
function articleHtml(html) {
  const tpl = document.createElement("template");
  tpl.innerHTML = html || ""; // trusted: rendered and sanitised by the server from the public sections
  const root = tpl.content;
  // the article's title is the view's h2: its sections go one level below it
  for (const h of [...root.querySelectorAll("h1, h2, h3, h4, h5")]) {
    const sub = document.createElement(`h${Math.min(6, Math.max(3, Number(h.tagName[1]) + 1))}`);
    for (const { name, value } of h.attributes) sub.setAttribute(name, value);
    sub.append(...h.childNodes);
    h.replaceWith(sub);
  }
  for (const img of root.querySelectorAll("img")) {
    img.loading = "lazy";
    img.decoding = "async";
  }
  for (const ol of root.querySelectorAll("ol")) {
    ol.classList.add("steps");
    const start = parseInt(ol.getAttribute("start"), 10);
    if (start > 1) ol.style.counterReset = `step ${start - 1}`;
  }
  for (const table of root.querySelectorAll("table")) {
    const wrap = el("div", { class: "table-wrap" });
    table.replaceWith(wrap);
    wrap.append(table);
  }
  for (const a of root.querySelectorAll("a[href]")) {
    if (!a.getAttribute("href").startsWith("#") && new URL(a.getAttribute("href"), location.href).origin !== location.origin) {
      a.target = "_top"; // other sites refuse to load in the shop's iframe
      a.rel = "noopener";
    }
  }
  return el("div", { class: "article-html" }, document.importNode(root, true));
}

function articleView(a) {
  const meta = el(
    "p",
    { class: "article-meta" },
    a.category && el("span", { class: "article-category" }, a.category),
    a.category && a.updated ? " · " : null,
    a.updated && el("time", { datetime: a.updated }, t("updated", { d: a.updated })),
  );
  // back to the results that led here, else to the article's topic
  const [backHref, backText] = state.query ? [href.search(state.query), t("results", { q: state.query })]
    : a.category ? [href.category(a.category), a.category] : [href.home(), t("allTopics")];
  const back = crumbs(el("a", { class: "crumb", href: backHref }, `‹ ${backText}`));
  const related = (a.related || []).length
    ? el(
        "section",
        { class: "related", "aria-labelledby": "related-title" },
        el("h3", { id: "related-title" }, t("related")),
        el("ul", {}, a.related.map((r) => el("li", {}, el("a", { href: href.article(r.id) }, r.title)))),
      )
    : null;
  const more = el("p", { class: "more-help" }, el("span", {}, t("stillNeedHelp")), " ", contactLink("contact-link"));
  return [a.title, (h) => [
    back,
    el("div", { class: "article-layout" },
      el("div", { class: "article-main" }, el("article", { class: "article" }, h, meta, articleHtml(a.html)), voteBox(a)),
      el("div", { class: "article-side" }, related, more)),
  ]];
}

// --- "was this helpful?" -------------------------------------------------------------------------------

function vote(id) {
  if (!state.votes.has(id)) state.votes.set(id, { helpful: null, sent: false, sending: false, failed: false, comment: "" });
  return state.votes.get(id);
}

function voteBox(a) {
  const box = el(
    "section",
    { id: "vote", class: "vote", "aria-labelledby": "vote-title", "data-article": a.id },
    el("h3", { id: "vote-title" }, t("helpful")),
    el("div", { class: "vote-body" }),
    el("p", { class: "vote-status", role: "status", "aria-live": "polite", tabindex: "-1" }),
  );
  paintVote(box, a.id);
  return box;
}

function paintVote(box, id) {
  const v = vote(id);
  const body = box.querySelector(".vote-body");
  const status = box.querySelector(".vote-status");
  const draft = box.querySelector("textarea");
  const typing = draft && document.activeElement === draft;
  status.textContent = v.sent ? t(v.helpful ? "thanksYes" : "thanksNo") : v.failed ? t("sendFailed") : "";
  status.dataset.kind = v.sent ? "ok" : v.failed ? "error" : "";
  if (v.sent) {
    body.replaceChildren();
    return;
  }
  const choice = (helpful) =>
    el(
      "button",
      {
        type: "button",
        class: "btn vote-btn",
        "aria-pressed": String(v.helpful === helpful),
        disabled: v.sending,
        onclick: () => choose(box, id, helpful),
      },
      t(helpful ? "yes" : "no"),
    );
  const parts = [el("div", { class: "vote-buttons" }, choice(true), choice(false))];
  if (v.helpful === false) {
    const area = el("textarea", { id: "vote-comment", rows: "3", maxlength: String(COMMENT_MAX), "aria-describedby": "vote-left" });
    area.value = v.comment;
    const left = el("span", { id: "vote-left", class: "chars-left" }, t("charsLeft", { n: COMMENT_MAX - v.comment.length }));
    area.addEventListener("input", () => {
      v.comment = area.value;
      left.textContent = t("charsLeft", { n: COMMENT_MAX - area.value.length });
    });
    parts.push(
      el(
        "form",
        { class: "vote-form", onsubmit: (e) => (e.preventDefault(), send(box, id)) },
        el("label", { for: "vote-comment" }, t("commentLabel")),
        area,
        el("div", { class: "vote-send" }, left, el("button", { type: "submit", class: "btn btn-primary", disabled: v.sending }, t(v.sending ? "sending" : "send"))),
      ),
    );
  }
  body.replaceChildren(...parts);
  if (typing) body.querySelector("textarea").focus();
}

function choose(box, id, helpful) {
  const v = vote(id);
  v.helpful = helpful;
  v.failed = false;
  if (helpful) return send(box, id);
  paintVote(box, id);
  box.querySelector("textarea").focus();
}

async function send(box, id, keepalive = false) {
  const v = vote(id);
  if (v.sending || v.sent) return;
  v.sending = true;
  v.failed = false;
  if (box) paintVote(box, id);
  const comment = v.helpful === false && !keepalive ? v.comment.trim().slice(0, COMMENT_MAX) || null : null;
  try {
    await api.feedback({ article_id: id, helpful: v.helpful, comment, query: state.query }, keepalive);
    v.sent = true;
  } catch (err) {
    v.failed = err.kind !== "rate"; // a rate limit says so in the notice; the buttons just work again after it
    noticeFor(err);
  } finally {
    v.sending = false;
  }
  const shown = $("vote");
  if (shown && shown.dataset.article === id) {
    paintVote(shown, id);
    // the focused button is gone: keep the keyboard reader here, on the thanks
    if (v.sent && (document.activeElement === document.body || !document.activeElement)) shown.querySelector(".vote-status").focus();
  }
}

/** A "No" without the optional comment sent still counts: sent when the reader leaves the article. */
function flushVote(id) {
  const v = state.votes.get(id);
  if (v && v.helpful === false && !v.sent && !v.sending) send(null, id, true);
}

// --- wiring ------------------------------------------------------------------------------------------

let searchTimer = null;

/** Opening an article from results (or a related one from it) remembers the search that led there. */
function onViewClick(e) {
  const a = e.target.closest && e.target.closest('a[href^="#/a/"]');
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  const route = state.view && state.view.route;
  const query = route && (route.name === "search" || route.name === "article") ? state.query : null;
  e.preventDefault();
  history.pushState(query ? { query } : null, "", a.getAttribute("href"));
  show({ focus: true });
}

function searchNow() {
  clearTimeout(searchTimer);
  const q = $("q").value.trim();
  const route = parseRoute(location.hash);
  if (!q) {
    if (route.name === "search") go(href.home(), { replace: true });
    return;
  }
  if (route.name === "search" && route.arg === q && !(state.view && state.view.error) && !viewCtrl) return;
  go(href.search(q), { replace: route.name === "search" });
}

function setLang(lang, { remember = true } = {}) {
  state.lang = lang;
  document.documentElement.lang = HTML_LANG[lang];
  for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  for (const node of document.querySelectorAll("[data-i18n-placeholder]")) node.placeholder = t(node.dataset.i18nPlaceholder);
  for (const b of document.querySelectorAll(".lang")) b.setAttribute("aria-pressed", String(b.dataset.lang === lang));
  if (remember) {
    const url = new URL(location.href); // a reload keeps the language chosen
    url.searchParams.set("lang", lang);
    history.replaceState(history.state, "", url);
  }
  paintNotice();
  if (state.view) paint();
  else document.title = t("title");
}

function reportHeight() {
  // an embedding page may size its iframe to the content
  if (window.parent === window || typeof ResizeObserver !== "function") return;
  new ResizeObserver(() => window.parent.postMessage({ type: "assist-help:height", height: document.documentElement.scrollHeight }, "*")).observe(document.body);
}

function init() {
  $("contact-foot").href = contactHref();
  setLang(state.lang, { remember: false });
  $("q").addEventListener("input", (e) => {
    if (e.isComposing) return; // a Chinese IME is still composing: search when the word is chosen
    clearTimeout(searchTimer);
    searchTimer = setTimeout(searchNow, DEBOUNCE_MS);
  });
  $("q").addEventListener("compositionend", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(searchNow, DEBOUNCE_MS);
  });
  $("search-form").addEventListener("submit", (e) => {
    e.preventDefault();
    searchNow();
  });
  for (const b of document.querySelectorAll(".lang")) b.addEventListener("click", () => setLang(b.dataset.lang));
  // A link or Back fires popstate and then hashchange (only popstate between entries of go()): show once.
  const onNavigate = () => {
    if (!sameRoute(parseRoute(location.hash), state.pending || (state.view && state.view.route))) show({ focus: true });
  };
  window.addEventListener("popstate", onNavigate);
  window.addEventListener("hashchange", onNavigate);
  $("view").addEventListener("click", onViewClick);
  document.querySelector(".skip-link").addEventListener("click", (e) => {
    e.preventDefault(); // "#view" is no route
    $("view").focus();
  });
  window.addEventListener("pagehide", () => state.view && state.view.route.name === "article" && flushVote(state.view.route.arg));
  reportHeight();
  loadCategories().catch(() => {}); // the contact URL and the query limit, whatever the first route is
  show();
}

// For tests and debugging in the console.
window.assistHelp = { state, api, t };

init();
