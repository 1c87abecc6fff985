// Pure text helpers of the sidebar: highlighting, transcript parsing, template placeholders, Markdown.
// Everything that reaches the DOM is built from text nodes: no innerHTML with KB or customer text.

const REGEX_SPECIAL = /[.*+?^${}()|[\]\\]/g;

function escapeRegExp(s) {
  return s.replace(REGEX_SPECIAL, "\\$&");
}

/**
 * The terms worth marking: single characters (jieba leaves 付, 用, 退 ... among the matched terms) would mark
 * half a snippet, so they are dropped when a longer term exists.
 */
export function highlightTerms(terms) {
  const clean = [...new Set((terms || []).map((t) => String(t).trim()).filter(Boolean))];
  const long = clean.filter((t) => [...t].length > 1);
  return (long.length ? long : clean).sort((a, b) => b.length - a.length);
}

/** Split `text` into [{text, hit}] segments where any of `terms` matches (case-insensitive, longest first). */
export function highlightSegments(text, terms) {
  const clean = highlightTerms(terms);
  if (!text) return [];
  if (!clean.length) return [{ text, hit: false }];
  const rx = new RegExp(clean.map(escapeRegExp).join("|"), "giu");
  const out = [];
  let last = 0;
  for (const m of text.matchAll(rx)) {
    if (!m[0]) continue;
    if (m.index > last) out.push({ text: text.slice(last, m.index), hit: false });
    out.push({ text: m[0], hit: true });
    last = m.index + m[0].length;
  }
  if (last < text.length) out.push({ text: text.slice(last), hit: false });
  return out;
}

/** Fill `el` with `text`, wrapping the matched terms in <mark>. */
export function highlightInto(el, text, terms) {
  el.replaceChildren();
  for (const seg of highlightSegments(text, terms)) {
    if (seg.hit) {
      const mark = document.createElement("mark");
      mark.textContent = seg.text;
      el.append(mark);
    } else {
      el.append(document.createTextNode(seg.text));
    }
  }
}

// --- transcripts ----------------------------------------------------------------------------------

const ROLE_WORDS = {
  customer: ["客户", "顾客", "用户", "买家", "访客", "customer", "user", "client", "buyer", "visitor"],
  agent: ["客服", "坐席", "人工客服", "商家", "agent", "support", "staff", "seller"],
  system: ["系统", "system"],
};
const ROLE_OF = new Map(Object.entries(ROLE_WORDS).flatMap(([role, words]) => words.map((w) => [w.toLowerCase(), role])));
const ALL_WORDS = [...ROLE_OF.keys()].sort((a, b) => b.length - a.length).map(escapeRegExp).join("|");
// Optional "[10:02]" / "10:02:33" / "2026-11-23 10:02" before the speaker, a name in brackets after it.
const LINE = new RegExp(
  String.raw`^\s*(?:\[[^\]]{0,40}\]\s*)?(?:(?:\d{4}-\d{1,2}-\d{1,2}\s+)?\d{1,2}:\d{2}(?::\d{2})?\s+)?(` + ALL_WORDS +
    String.raw`)\s*(?:[(（][^)）]{0,30}[)）])?\s*[:：]\s*(.*)$`,
  "iu",
);

/** Turns from a pasted transcript ("客户: ..." / "客服：..." / "customer: ..."); unprefixed lines continue the turn above. */
export function parseTranscript(raw) {
  const turns = [];
  for (const line of String(raw || "").split(/\r?\n/)) {
    if (!line.trim()) continue;
    const m = LINE.exec(line);
    if (m) {
      turns.push({ role: ROLE_OF.get(m[1].toLowerCase()), text: m[2].trim() });
    } else if (turns.length) {
      const prev = turns[turns.length - 1];
      prev.text = prev.text ? `${prev.text}\n${line.trim()}` : line.trim();
    } else {
      turns.push({ role: "customer", text: line.trim() });
    }
  }
  return turns.filter((t) => t.text);
}

// --- template placeholders ------------------------------------------------------------------------

const PLACEHOLDER = /【([^【】\n]{1,40})】/g;

/** The distinct placeholder labels in `text`, in order of appearance (【订单号】 -> "订单号"). */
export function placeholderLabels(text) {
  return [...new Set([...String(text || "").matchAll(PLACEHOLDER)].map((m) => m[1]))];
}

/** `text` with every 【label】 replaced by values[label] when that value is not blank. */
export function fillPlaceholders(text, values) {
  return String(text || "").replace(PLACEHOLDER, (whole, label) => {
    const v = values && values[label];
    return v != null && String(v).trim() !== "" ? String(v) : whole;
  });
}

/** Segments of `text`: [{text, placeholder}] so unfilled 【...】 can be shown as inline slots. */
export function placeholderSegments(text) {
  const out = [];
  let last = 0;
  for (const m of String(text || "").matchAll(PLACEHOLDER)) {
    if (m.index > last) out.push({ text: text.slice(last, m.index), placeholder: false });
    out.push({ text: m[0], placeholder: true });
    last = m.index + m[0].length;
  }
  if (last < text.length) out.push({ text: text.slice(last), placeholder: false });
  return out;
}

// --- Markdown (a safe subset: headings, paragraphs, lists, tables, quotes, code, **bold**, `code`) ----------

function inline(parent, text) {
  const rx = /(\*\*[^*]+\*\*|`[^`]+`|\[[^\]]+\]\([^)\s]+\))/g;
  let last = 0;
  for (const m of text.matchAll(rx)) {
    if (m.index > last) parent.append(document.createTextNode(text.slice(last, m.index)));
    const tok = m[0];
    let el;
    if (tok.startsWith("**")) {
      el = document.createElement("strong");
      el.textContent = tok.slice(2, -2);
    } else if (tok.startsWith("`")) {
      el = document.createElement("code");
      el.textContent = tok.slice(1, -1);
    } else {
      el = document.createElement("span"); // links are shown as their text: KB links are not navigable here
      el.textContent = tok.slice(1, tok.indexOf("]"));
    }
    parent.append(el);
    last = m.index + tok.length;
  }
  if (last < text.length) parent.append(document.createTextNode(text.slice(last)));
  return parent;
}

function cells(row) {
  return row.trim().replace(/^\|/, "").replace(/\|$/, "").split("|").map((c) => c.trim());
}

/** A DocumentFragment for Markdown `md`; headings get data-heading (their text) so callers can scroll to one. */
export function renderMarkdown(md) {
  const frag = document.createDocumentFragment();
  const lines = String(md || "").replace(/\r\n?/g, "\n").split("\n");
  let i = 0;
  let para = [];
  const flush = () => {
    if (para.length) frag.append(inline(document.createElement("p"), para.join(" ")));
    para = [];
  };
  while (i < lines.length) {
    const line = lines[i];
    let m;
    if (/^\s*(```|~~~)/.test(line)) {
      flush();
      const fence = line.trim().slice(0, 3);
      const body = [];
      i++;
      while (i < lines.length && !lines[i].trim().startsWith(fence)) body.push(lines[i++]);
      i++;
      const pre = document.createElement("pre");
      const code = document.createElement("code");
      code.textContent = body.join("\n");
      pre.append(code);
      frag.append(pre);
      continue;
    }
    if ((m = /^(#{1,6})\s+(.*?)\s*#*\s*$/.exec(line))) {
      flush();
      const h = document.createElement(`h${Math.min(6, m[1].length + 2)}`);
      inline(h, m[2]);
      h.dataset.heading = h.textContent;
      frag.append(h);
      i++;
      continue;
    }
    if (/^\s*\|/.test(line) && i + 1 < lines.length && /^\s*\|?\s*:?-{2,}/.test(lines[i + 1])) {
      flush();
      const table = document.createElement("table");
      const thead = table.createTHead().insertRow();
      for (const c of cells(line)) inline(thead.appendChild(document.createElement("th")), c);
      const tbody = table.createTBody();
      i += 2;
      while (i < lines.length && /^\s*\|/.test(lines[i])) {
        const tr = tbody.insertRow();
        for (const c of cells(lines[i])) inline(tr.insertCell(), c);
        i++;
      }
      const wrap = document.createElement("div");
      wrap.className = "table-wrap";
      wrap.append(table);
      frag.append(wrap);
      continue;
    }
    if ((m = /^\s*([-*+]|\d+[.)])\s+/.exec(line))) {
      flush();
      const ordered = /\d/.test(m[1]);
      const list = document.createElement(ordered ? "ol" : "ul");
      while (i < lines.length && (m = /^\s*([-*+]|\d+[.)])\s+(.*)$/.exec(lines[i])) && /\d/.test(m[1]) === ordered) {
        inline(list.appendChild(document.createElement("li")), m[2]);
        i++;
      }
      frag.append(list);
      continue;
    }
    if (/^\s*>/.test(line)) {
      flush();
      const quote = document.createElement("blockquote");
      const body = [];
      while (i < lines.length && /^\s*>/.test(lines[i])) body.push(lines[i++].replace(/^\s*>\s?/, ""));
      inline(quote, body.join(" "));
      frag.append(quote);
      continue;
    }
    if (!line.trim()) flush();
    else para.push(line.trim());
    i++;
  }
  flush();
  return frag;
}
