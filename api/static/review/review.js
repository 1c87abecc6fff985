// The admin review page: runs GET /v1/admin/review, lists the knowledge gaps with one-click fixes
// (POST /v1/admin/review/apply), and shows the full report.html in a sandboxed frame.
const $ = (id) => document.getElementById(id);
const token = $("token");
token.value = sessionStorage.getItem("assist-admin-token") || "";

function headers() {
  return { Authorization: `Bearer ${token.value.trim()}`, "Content-Type": "application/json" };
}

async function call(method, path, body) {
  const r = await fetch(path, { method, headers: headers(), body: body ? JSON.stringify(body) : undefined });
  if (!r.ok) {
    let message = `${r.status}`;
    try { message = (await r.json()).error.message; } catch { /* not JSON */ }
    throw new Error(message);
  }
  return r;
}

function el(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  for (const c of children) node.append(c);
  return node;
}

function gapCard(gap, since) {
  const s = gap.suggested;
  const near = gap.nearest ? `${gap.nearest.id}（${gap.nearest.title}）` : "–";
  const result = el("span", { className: "done" });
  const article = el("input", { value: s.article_id || (gap.nearest ? gap.nearest.id : ""), size: 28 });
  article.setAttribute("aria-label", `加到哪篇文章 add to article (${gap.id})`);
  const add = el("button", { type: "button", textContent: "加为相似问 Add as similar questions" });
  const ignore = el("button", { type: "button", className: "secondary", textContent: "忽略 Ignore" });
  const act = async (body, label) => {
    add.disabled = ignore.disabled = true;
    try {
      const path = body.add_to ? "/v1/admin/review/apply" : "/v1/admin/review/ignore";
      const out = await (await call("POST", path, { gap_id: gap.id, since, ...body })).json();
      result.textContent = out.action === "added"
        ? `${label}: ${out.questions_added.length} → ${out.article_id}（请重建索引并跑评测 rebuild the index and run the eval gate）`
        : label;
    } catch (err) {
      result.textContent = "";
      $("status").textContent = `${gap.id}: ${err.message}`;
      add.disabled = ignore.disabled = false;
    }
  };
  add.addEventListener("click", () => act({ add_to: article.value.trim() }, "已添加 added"));
  ignore.addEventListener("click", () => act({}, "已忽略 ignored"));
  return el("article", { className: "gap" },
    el("h3", { textContent: `${gap.id} · ${gap.distinct} 个不同问题 different requests · ${gap.volume} 次 times` }),
    el("ul", {}, ...gap.examples.map((e) => el("li", { textContent: e }))),
    el("p", { textContent: `最近的文章 nearest: ${near} · 建议 suggested: ${s.text}` }),
    el("div", { className: "act" }, article, add, ignore, result));
}

async function load() {
  sessionStorage.setItem("assist-admin-token", token.value.trim());
  $("status").textContent = "生成中… running";
  const since = $("since").value;
  try {
    const report = await (await call("GET", `/v1/admin/review?since=${encodeURIComponent(since)}`)).json();
    const gaps = $("gaps");
    gaps.replaceChildren(...(report.gaps.length ? report.gaps.map((g) => gapCard(g, since)) : [el("p", { textContent: "没有知识缺口 no gaps" })]));
    const page = await (await call("GET", `/v1/admin/review?since=${encodeURIComponent(since)}&format=html`)).text();
    $("report").srcdoc = page;
    $("status").textContent = `${report.totals.suggestions} 条建议 suggestions · ${report.gaps.length} 个缺口 gaps`;
  } catch (err) {
    $("status").textContent = `出错了 failed: ${err.message}`;
  }
}

$("load").addEventListener("click", load);
token.addEventListener("keydown", (e) => { if (e.key === "Enter") load(); });
