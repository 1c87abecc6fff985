// The full-article drawer (a modal <dialog>), opened at the section an answer came from.

import { renderMarkdown } from "./text.js";
import { $, el, errorText } from "./ui.js";

/**
 * Wires the drawer. client: the api.js client (its article() call).
 * Returns { open(answer) }: answer is an item of a suggest response's `answers`.
 */
export function createArticleDrawer({ client }) {
  let ctrl = null;

  async function open(a) {
    const dlg = $("article");
    $("article-title").textContent = a.title;
    $("article-meta").textContent = a.heading_path.join(" > ");
    const body = $("article-body");
    body.replaceChildren(el("p", { class: "muted" }, "加载中…"));
    if (!dlg.open) dlg.showModal();
    if (ctrl) ctrl.abort();
    const mine = (ctrl = new AbortController());
    try {
      const art = await client.article(a.article_id, mine.signal);
      if (mine !== ctrl) return;
      $("article-title").textContent = art.title;
      $("article-meta").textContent = [art.category, art.updated ? `更新于 ${art.updated}` : "", art.tags.length ? `标签：${art.tags.join("、")}` : ""]
        .filter(Boolean).join(" · ");
      body.replaceChildren(renderMarkdown(art.body));
      // Walk the heading path down the article's headings, so a repeated subheading finds the right section.
      const headings = [...body.querySelectorAll("[data-heading]")];
      let heading = null;
      let from = 0;
      for (const part of a.heading_path.slice(1)) {
        const at = headings.findIndex((h, i) => i >= from && h.dataset.heading.trim() === String(part).trim());
        if (at < 0) break;
        heading = headings[at];
        from = at + 1;
      }
      if (heading) {
        heading.classList.add("target");
        heading.scrollIntoView({ block: "start" });
      } else {
        body.scrollTop = 0;
      }
    } catch (err) {
      if (err.name === "AbortError") return;
      const [title, detail] = errorText(err);
      body.replaceChildren(el("div", { class: "error-box", role: "alert" }, el("strong", {}, title), el("p", {}, detail)));
    }
  }

  $("article-close").addEventListener("click", () => $("article").close());
  $("article").addEventListener("click", (e) => {
    if (e.target === $("article")) $("article").close(); // a click on the backdrop
  });

  return { open };
}
