"""The customer help centre (api/static/help, served at /help) in a real headless Chromium against a real
uvicorn serving the tiny KB, at a phone's 375x812 and a desktop's 1280x800.

Same browser setup as tests/test_sidebar.py (Debian /usr/bin/chromium, `bash scripts/install-browser.sh`).
Screenshots for review go to test-artifacts/help/. The page-weight test needs no browser and runs in the
fast suite.
"""

import os
import re
from pathlib import Path
from typing import Callable
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from assist.index.store import build_index
from tests.conftest import CHUNKING, TINY_KB, live_server

REPO = Path(__file__).resolve().parent.parent
HELP_STATIC = REPO / "api" / "static" / "help"
ARTIFACTS = REPO / "test-artifacts" / "help"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
MAX_PAGE_BYTES = 100_000
SESSION = re.compile(r"^[A-Za-z0-9_-]{22}$")
REFUND = "退款到账要多久"
NONSENSE = "xyzzy 天气预报"

browser_test = pytest.mark.browser
# every browser test runs on a phone and on a desktop
VIEWPORTS = {375: {"width": 375, "height": 812}, 1280: {"width": 1280, "height": 800}}
each_viewport = pytest.mark.parametrize("width", list(VIEWPORTS), ids=[f"{w}px" for w in VIEWPORTS])


# --- weight: no browser needed ----------------------------------------------------------------------------


def test_page_weight_and_no_outside_resources():
    """index.html + CSS + JS stay small (phones on slow networks) and name nothing outside this server."""
    files = sorted(p for p in HELP_STATIC.iterdir() if p.suffix in (".html", ".css", ".js"))
    names = {p.name for p in files}
    assert {"index.html", "help.css", "help.js"} <= names, names
    total = sum(p.stat().st_size for p in files)
    assert total <= MAX_PAGE_BYTES, f"help page is {total} bytes: {[(p.name, p.stat().st_size) for p in files]}"
    for p in files:
        text = p.read_text(encoding="utf-8")
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", text, re.IGNORECASE), f"{p.name} names another site"
        assert "@import" not in text and "@font-face" not in text, p.name


# --- servers and pages ------------------------------------------------------------------------------------


def start_help_server(tmp: Path, embedder, **env: str):
    """uvicorn with the tiny KB and the hashing embedder on a free port; yields its URL."""
    build_index(TINY_KB, tmp / "idx", embedder, chunking=CHUNKING)
    env = {
        "ASSIST_INDEX_DIR": str(tmp / "idx"),
        "ASSIST_FEEDBACK_DB": str(tmp / "fb.db"),
        "ASSIST_API_KEYS": "test-key",
        "ASSIST_ADMIN_TOKEN": "test-admin",
        **env,
    }
    with live_server(tmp, env) as url:
        yield url


@pytest.fixture(scope="module")
def help_server(tmp_path_factory, embedder):
    # Every page of these tests comes from 127.0.0.1, one rate-limit bucket: a roomy one here, the limit
    # itself is tested against `limited_server`.
    yield from start_help_server(tmp_path_factory.mktemp("help"), embedder, ASSIST_PUBLIC_RATE="100", ASSIST_PUBLIC_BURST="500")


@pytest.fixture
def limited_server(tmp_path_factory, embedder):
    """0.2 requests a second, 3 at once; one server per test, so every test starts with a full bucket."""
    yield from start_help_server(tmp_path_factory.mktemp("help-limited"), embedder, ASSIST_PUBLIC_RATE="0.2", ASSIST_PUBLIC_BURST="3")


@pytest.fixture(scope="module")
def browser():
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: run `bash scripts/install-browser.sh` (Debian chromium + fonts-wqy-microhei)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def shop_origin(url: str) -> str:
    """The same server under another origin, to play the shop embedding the help centre (a public page such
    as about:blank may not frame 127.0.0.1: Chromium's local network access checks)."""
    return url.replace("://127.0.0.1:", "://localhost:")


def _opened_pages(browser, url: str):
    """Yields open_(width, path=..., locale=..., setup=...) -> a Page with the help centre loaded; afterwards
    closes the pages and fails on JavaScript errors or requests to any other server."""
    contexts, errors, outside = [], [], []
    ours = (url, shop_origin(url), "data:", "about:")

    def open_(width: int, path: str = "/help", locale: str = "zh-CN", setup: Callable[[Page], None] | None = None) -> Page:
        ctx = browser.new_context(viewport=VIEWPORTS[width], locale=locale)
        ctx.set_default_timeout(10_000)
        contexts.append(ctx)
        page = ctx.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("request", lambda r: None if r.url.startswith(ours) else outside.append(r.url))
        if setup:
            setup(page)
        page.goto(url + path)
        page.wait_for_selector("html[data-ready='true']")
        return page

    yield open_
    for ctx in contexts:
        ctx.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
    assert not outside, f"requests to other servers: {outside}"


@pytest.fixture
def open_help(browser, help_server):
    yield from _opened_pages(browser, help_server)


@pytest.fixture
def open_limited(browser, limited_server):
    yield from _opened_pages(browser, limited_server)


def shoot(page: Page, name: str, width: int) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"{name}-{width}.png", full_page=True)


def session_of(page: Page) -> str:
    sid = page.evaluate("sessionStorage.getItem('assist.help.session')")
    assert sid and SESSION.match(sid), sid
    return sid


def search_box(page: Page):
    return page.get_by_label("搜索帮助文章")


def heading(page: Page):
    return page.locator("#view-title")


def settled(page: Page) -> None:
    expect(page.locator("#view")).to_have_attribute("aria-busy", "false")


def is_feedback(response) -> bool:
    return response.url.endswith("/v1/public/feedback") and response.request.method == "POST"


# --- 1. browse --------------------------------------------------------------------------------------------


@browser_test
@each_viewport
def test_browse_categories_then_an_article(open_help, width):
    page = open_help(width)
    cats = page.locator(".cat")
    # the categories of published public items only: the draft (会员) and the internal FAQ count for nothing
    expect(cats.locator(".cat-name")).to_have_text(["退款售后", "发票", "账户安全"])
    expect(cats.first).to_contain_text("2 篇")
    expect(page).to_have_title("帮助中心")
    contact = page.locator("#contact-foot")
    expect(contact).to_have_text("联系我们")
    expect(contact).to_have_attribute("href", f"/help/contact?session={session_of(page)}")
    expect(contact).to_have_attribute("target", "_top")  # leaves the shop's iframe for the contact page
    shoot(page, "home", width)

    cats.filter(has_text="退款售后").click()
    expect(page).to_have_url(re.compile(r"#/c/%E9%80%80"))
    expect(heading(page)).to_have_text("退款售后")
    expect(heading(page)).to_be_focused()  # screen readers start at the new view
    results = page.locator(".result")
    expect(results.locator(".result-title")).to_have_text(["七天无理由退货", "退款到账时间"])  # browsing: by title
    expect(results.first.locator(".snippet")).to_contain_text("签收之日起 7 天内")
    shoot(page, "category", width)

    results.first.get_by_role("link", name="七天无理由退货").click()
    expect(page).to_have_url(re.compile(r"#/a/return-policy$"))
    expect(heading(page)).to_have_text("七天无理由退货")
    expect(heading(page)).to_be_focused()
    expect(page).to_have_title("七天无理由退货 · 帮助中心")
    expect(page.locator(".article-meta")).to_have_text("退款售后 · 更新于 2026-10-01")
    body = page.locator(".article-html")
    # the server's HTML, rendered, its sections one level below the title
    expect(body.locator("h3")).to_have_text(["申请步骤", "不支持无理由退货的商品"])
    steps = body.locator("ol > li")
    expect(steps).to_have_count(3)
    assert steps.first.evaluate("li => getComputedStyle(li, '::before').content") == "counter(step)"  # numbered steps
    img = body.locator("img")
    expect(img).to_have_attribute("alt", "在订单详情点击申请售后，选择退货退款")
    expect(img).to_have_attribute("loading", "lazy")
    img.scroll_into_view_if_needed()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=img.element_handle())
    assert img.bounding_box()["width"] <= body.bounding_box()["width"] + 0.5  # never wider than the text
    expect(page.locator(".vote h3")).to_have_text("这篇文章有帮助吗？")
    expect(page.locator("#view .contact-link")).to_have_attribute("href", f"/help/contact?session={session_of(page)}&article=return-policy")
    page.evaluate("window.scrollTo(0, 0)")
    shoot(page, "article", width)

    # a related article; its agent-only section never reaches the customer's screen
    page.locator(".related").get_by_role("link", name="退款到账时间").click()
    expect(heading(page)).to_have_text("退款到账时间")
    expect(body).to_contain_text("储蓄卡退款需要 3 到 7 个工作日")
    expect(page.locator("#view")).not_to_contain_text("ZEBRA-7")
    expect(page.locator("#view")).not_to_contain_text("客服处理要点")

    # Back walks the views back, each with its heading focused
    page.go_back()
    expect(heading(page)).to_have_text("七天无理由退货")
    page.go_back()
    expect(heading(page)).to_have_text("退款售后")
    expect(heading(page)).to_be_focused()
    page.go_back()
    expect(heading(page)).to_have_text("按分类浏览")
    expect(cats).to_have_count(3)


@browser_test
@each_viewport
def test_a_draft_or_unknown_article_says_not_found(open_help, width):
    page = open_help(width, path="/help#/a/draft-notice")  # a draft is as absent as an unknown id
    expect(heading(page)).to_have_text("找不到这篇文章")
    expect(page.locator("#view")).not_to_contain_text("会员积分")
    page.get_by_role("link", name="返回帮助中心首页").click()
    expect(page.locator(".cat").first).to_be_visible()
    expect(heading(page)).to_be_focused()


# --- 2. search --------------------------------------------------------------------------------------------


@browser_test
@each_viewport
def test_search_as_you_type_highlights_and_admits_when_it_has_no_answer(open_help, width):
    page = open_help(width)
    box = search_box(page)
    box.press_sequentially(REFUND)  # no Enter: results come as the customer types
    expect(heading(page)).to_have_text(f"“{REFUND}”的搜索结果")
    expect(page).to_have_url(re.compile(r"#/s/%E9%80%80"))
    expect(box).to_be_focused()  # typing is not interrupted by the new view
    first = page.locator(".result").first
    expect(first).to_have_attribute("data-id", "refund-timing")
    expect(first.locator(".result-title mark")).to_have_text(["退款", "到账"])
    expect(first.locator(".snippet mark")).to_have_text(["退款"])
    shoot(page, "search", width)

    # a FAQ answer found through one of its questions shows that question
    box.fill("发票怎么下载")
    box.press("Enter")
    faq = page.locator('.result[data-id="faq-invoice-download"]')
    expect(faq.locator(".matched-q")).to_have_text("匹配问题：发票怎么下载")
    expect(faq.locator(".matched-q mark")).to_have_text(["发票", "下载"])

    # what the customer types is shown as text, never run as HTML
    box.fill("<img src=x onerror=alert(1)>退款")
    box.press("Enter")
    expect(heading(page)).to_have_text("“<img src=x onerror=alert(1)>退款”的搜索结果")
    expect(page.locator("#view img")).to_have_count(0)

    box.fill(NONSENSE)
    no_answer = page.locator(".no-answer")
    expect(no_answer).to_be_visible()
    expect(no_answer).to_contain_text("抱歉，没有找到合适的答案")
    expect(page.locator(".result")).to_have_count(0)
    contact = no_answer.get_by_role("link", name="联系客服")
    expect(contact).to_be_visible()
    expect(contact).to_have_attribute("href", f"/help/contact?session={session_of(page)}")
    expect(contact).to_have_attribute("target", "_top")
    expect(page.locator("#sr-status")).to_have_text("抱歉，没有找到合适的答案")  # said to screen readers too
    shoot(page, "no-answer", width)

    # the searches replaced each other in the history: one Back is home again, with an empty box
    page.go_back()
    expect(heading(page)).to_have_text("按分类浏览")
    expect(box).to_have_value("")
    page.go_forward()
    expect(heading(page)).to_have_text(f"“{NONSENSE}”的搜索结果")
    expect(box).to_have_value(NONSENSE)

    # the box takes no more than the server does; a longer search in a link says why nothing is shown
    expect(box).to_have_attribute("maxlength", "100")
    page.goto(page.url.split("#")[0] + "#/s/" + "退" * 101)
    expect(heading(page)).to_have_text("搜索内容太长")
    expect(page.locator("#view .error-text")).to_have_text("搜索内容太长了，最多 100 个字。")


@browser_test
@each_viewport
def test_only_the_latest_search_is_shown(open_help, width):
    """Typing on aborts the search in flight: a slow answer to an older query never replaces a newer one."""
    def setup(page: Page) -> None:
        def hold(route):  # the answer for 退款 never comes back on its own
            if parse_qs(urlsplit(route.request.url).query).get("q") != ["退款"]:
                route.continue_()
        page.route(lambda url: "/v1/public/search" in url, hold)

    page = open_help(width, setup=setup)
    box = search_box(page)
    box.fill("退款")
    box.press("Enter")
    expect(page.locator("#view")).to_have_attribute("aria-busy", "true")
    with page.expect_event("requestfailed") as failed:
        box.fill("发票怎么下载")
        box.press("Enter")
    assert parse_qs(urlsplit(failed.value.url).query)["q"] == ["退款"]  # the older request was aborted
    expect(heading(page)).to_have_text("“发票怎么下载”的搜索结果")
    expect(page.locator(".result").first).to_have_attribute("data-id", "faq-invoice-download")


# --- 3. vote ----------------------------------------------------------------------------------------------


@browser_test
@each_viewport
def test_vote_yes_and_no_with_a_comment(open_help, width):
    page = open_help(width)
    sid = session_of(page)
    box = search_box(page)
    box.fill(REFUND)
    box.press("Enter")
    page.locator('.result[data-id="refund-timing"] a').click()
    expect(heading(page)).to_have_text("退款到账时间")

    with page.expect_response(is_feedback) as sent:
        page.get_by_role("button", name="是", exact=True).click()
    response = sent.value
    assert response.status == 201 and response.json() == {"recorded": True}
    assert response.request.post_data_json == {"article_id": "refund-timing", "helpful": True, "comment": None, "query": REFUND}
    assert response.request.headers["x-help-session"] == sid
    status = page.locator(".vote-status")
    expect(status).to_have_text("感谢您的反馈！")
    expect(page.locator(".vote-btn")).to_have_count(0)  # one vote per article
    shoot(page, "voted", width)

    # No opens an optional comment; sending it records both
    page.locator(".related").get_by_role("link", name="七天无理由退货").click()
    expect(heading(page)).to_have_text("七天无理由退货")
    page.get_by_role("button", name="否", exact=True).click()
    expect(page.get_by_role("button", name="否", exact=True)).to_have_attribute("aria-pressed", "true")
    comment = page.get_by_label("哪里可以改进？（选填）")
    expect(comment).to_be_focused()
    expect(comment).to_have_attribute("maxlength", "500")
    comment.fill("图片太小，看不清")
    expect(page.locator(".chars-left")).to_have_text("还可输入 492 字")
    with page.expect_response(is_feedback) as sent:
        page.get_by_role("button", name="发送").click()
    response = sent.value
    assert response.status == 201 and response.json() == {"recorded": True}
    # the search that led to the first article led here too
    assert response.request.post_data_json == {"article_id": "return-policy", "helpful": False, "comment": "图片太小，看不清", "query": REFUND}
    expect(status).to_have_text("感谢反馈，我们会继续改进这篇文章。")
    expect(comment).to_have_count(0)
    shoot(page, "voted-no", width)

    # the vote is remembered when the reader comes back to the article
    page.go_back()
    expect(heading(page)).to_have_text("退款到账时间")
    expect(status).to_have_text("感谢您的反馈！")

    # a No without the optional comment still counts, once the reader moves on
    box.fill("发票怎么下载")
    box.press("Enter")
    page.locator('.result[data-id="faq-invoice-download"] a').click()
    page.get_by_role("button", name="否", exact=True).click()
    with page.expect_response(is_feedback) as sent:
        page.locator(".crumbs a").click()
    assert sent.value.status == 201
    assert sent.value.request.post_data_json == {"article_id": "faq-invoice-download", "helpful": False, "comment": None, "query": "发票怎么下载"}


# --- 4. rate limit ----------------------------------------------------------------------------------------


def seconds(n: str) -> str:
    return f"{n} second" if n == "1" else f"{n} seconds"


@browser_test
@each_viewport
def test_too_many_searches_say_when_to_try_again_and_recover(open_limited, width):
    searched = []

    def setup(page: Page) -> None:
        page.on("request", lambda r: searched.append(parse_qs(urlsplit(r.url).query).get("q", [""])[0]) if "/v1/public/search" in r.url else None)

    page = open_limited(width, setup=setup)  # the categories took one of the 3 tokens
    expect(page.locator(".cat").first).to_be_visible()
    box = search_box(page)
    limited = shown = None
    for q in ["退款", "到账", "发票", "密码", "退货", "冻结", "下载", "快递"]:  # all different: nothing from a cache
        with page.expect_response(lambda r: "/v1/public/search" in r.url) as answer:
            box.fill(q)
            box.press("Enter")
        if answer.value.status == 429:
            limited = answer.value
            break
        expect(heading(page)).to_have_text(f"“{q}”的搜索结果")
        shown = q
    assert limited is not None and shown, "no 429 after a search from a server allowing 3 requests at once"
    wait = limited.headers["retry-after"]
    assert wait.isdigit() and int(wait) >= 1

    notice = page.locator("#notice")
    expect(notice).to_have_text(f"操作太频繁了，请 {wait} 秒后再试。")
    expect(notice).to_have_attribute("aria-live", "polite")
    expect(page.locator(".result").first).to_be_visible()  # the last results stay on screen
    expect(heading(page)).to_have_text(f"“{shown}”的搜索结果")
    shoot(page, "rate-limited", width)

    page.get_by_role("button", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(notice).to_have_text(f"Too many requests — please try again in {seconds(wait)}.")

    # typing on while blocked sends nothing; the latest search runs by itself once the wait is over
    before = len(searched)
    box = page.get_by_label("Search help articles")
    box.fill(REFUND)
    box.press("Enter")
    expect(notice).to_contain_text("Too many requests")
    expect(heading(page)).to_have_text(f"Results for “{REFUND}”", timeout=(int(wait) + 10) * 1000)
    expect(page.locator(".result").first).to_have_attribute("data-id", "refund-timing")
    expect(notice).to_be_empty()
    assert searched[before:] == [REFUND], searched


# --- 6. accessibility -------------------------------------------------------------------------------------

UNLABELLED_JS = """() => {
  const name = (el) => (el.getAttribute('aria-label') || '').trim()
    || (el.getAttribute('aria-labelledby') || '').split(/\\s+/).map((id) => document.getElementById(id)?.textContent || '').join('').trim()
    || (el.labels ? [...el.labels].map((l) => l.textContent).join('').trim() : '');
  const out = [];
  for (const el of document.querySelectorAll('input, textarea, select')) if (!name(el)) out.push(el.outerHTML);
  for (const el of document.querySelectorAll('button, a[href]')) if (!(name(el) || el.textContent.trim() || el.title)) out.push(el.outerHTML);
  return out;
}"""

# Elements with their own text whose colour is below 4.5:1 on the first opaque background behind them.
LOW_CONTRAST_JS = """() => {
  const rgba = (s) => { const m = s.match(/[\\d.]+/g).map(Number); return [m[0], m[1], m[2], m[3] ?? 1]; };
  const lum = ([r, g, b]) => { const c = [r, g, b].map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]; };
  const bgOf = (el) => {
    for (let n = el; n; n = n.parentElement) { const c = rgba(getComputedStyle(n).backgroundColor); if (c[3] > 0.5) return c; }
    return [255, 255, 255, 1];
  };
  const out = [];
  for (const el of document.querySelectorAll('body *')) {
    if (![...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim())) continue;
    const r = el.getBoundingClientRect();
    if (!r.width || !r.height || el.closest('.visually-hidden, .skip-link')) continue;
    const fg = rgba(getComputedStyle(el).color), bg = bgOf(el);
    const mixed = fg.slice(0, 3).map((v, i) => v * fg[3] + bg[i] * (1 - fg[3]));
    const [a, b] = [lum(mixed), lum(bg)].sort((x, y) => y - x);
    const ratio = (a + 0.05) / (b + 0.05);
    if (ratio < 4.5) out.push(`${el.tagName}.${el.className}: ${ratio.toFixed(2)} "${el.textContent.trim().slice(0, 30)}"`);
  }
  return out;
}"""

# Controls smaller than 44x44 px (links inside the article's own text are exempt, as WCAG allows).
SMALL_TARGETS_JS = """() => [...document.querySelectorAll('button, input, textarea, a[href]')]
  .filter((el) => !el.closest('.article-html, .skip-link'))
  .map((el) => [el, (el.closest('.result') || el).getBoundingClientRect()])
  .filter(([el, r]) => r.width && r.height && (r.width < 44 || r.height < 44))
  .map(([el, r]) => `${el.outerHTML.slice(0, 60)} ${Math.round(r.width)}x${Math.round(r.height)}`)"""


def check_views(page: Page, width: int, where: str) -> None:
    settled(page)
    assert page.evaluate(UNLABELLED_JS) == [], where
    assert page.evaluate(LOW_CONTRAST_JS) == [], where
    if width == 375:  # touch targets on the phone
        assert page.evaluate(SMALL_TARGETS_JS) == [], where


@browser_test
@each_viewport
def test_accessibility_basics(open_help, width):
    page = open_help(width)
    expect(page.locator(".cat").first).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    check_views(page, width, "home")

    # keyboard: from the search box, Tab reaches the first category, with a visible focus outline
    box = search_box(page)
    box.focus()
    page.keyboard.press("Tab")
    first = page.locator(".cat").first
    expect(first).to_be_focused()
    outline = first.evaluate("el => [getComputedStyle(el).outlineStyle, parseFloat(getComputedStyle(el).outlineWidth)]")
    assert outline[0] != "none" and outline[1] >= 2, outline
    page.keyboard.press("Enter")
    expect(heading(page)).to_have_text("退款售后")
    expect(heading(page)).to_be_focused()

    box.fill(REFUND)
    box.press("Enter")
    expect(page.locator(".result mark").first).to_be_visible()
    check_views(page, width, "search")
    box.fill(NONSENSE)
    box.press("Enter")
    expect(page.locator(".no-answer")).to_be_visible()
    check_views(page, width, "no answer")

    page.goto(page.url.split("#")[0] + "#/a/return-policy")
    expect(heading(page)).to_have_text("七天无理由退货")
    page.get_by_role("button", name="否", exact=True).click()
    expect(page.locator("textarea")).to_be_visible()
    check_views(page, width, "article with the comment box")

    # the language switch changes every UI string and the lang attribute; the KB text stays as it is
    page.get_by_role("button", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("button", name="English")).to_have_attribute("aria-pressed", "true")
    expect(page.get_by_label("Search help articles")).to_be_visible()
    expect(page.locator(".vote h3")).to_have_text("Was this helpful?")
    expect(page.get_by_label("What could be better? (optional)")).to_be_visible()
    expect(page.locator("#contact-foot")).to_have_text("Contact us")
    expect(heading(page)).to_have_text("七天无理由退货")
    expect(page).to_have_title("七天无理由退货 · Help Centre")
    check_views(page, width, "article in English")
    page.reload()  # the choice survives a reload
    expect(page.locator("html")).to_have_attribute("lang", "en")
    page.get_by_role("button", name="中文").click()
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page.locator(".vote h3")).to_have_text("这篇文章有帮助吗？")


@browser_test
@each_viewport
def test_language_defaults_from_the_url_then_the_browser(open_help, width):
    page = open_help(width, locale="en-GB")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator(".brand")).to_have_text("Help Centre")
    expect(page.locator(".cat").first).to_contain_text("2 articles")
    shoot(page, "home-en", width)
    page = open_help(width, locale="en-GB", path="/help?lang=zh")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page.locator(".brand")).to_have_text("帮助中心")


# --- embedding --------------------------------------------------------------------------------------------


@browser_test
@each_viewport
def test_works_inside_an_iframe(open_help, help_server, width):
    page = open_help(width)
    page.goto(shop_origin(help_server) + "/readyz")  # the shop's page: another origin than the help centre
    page.set_content(f'<h1>Shop</h1><iframe title="help" src="{help_server}/help" style="width:100%;height:700px;border:0"></iframe>')
    frame = page.frame_locator("iframe")
    frame.locator(".cat", has_text="发票").click()
    frame.get_by_role("link", name="电子发票在哪里下载？").click()
    expect(frame.locator("#view-title")).to_have_text("电子发票在哪里下载？")
    expect(frame.locator(".article-html ol > li")).to_have_count(3)
    expect(frame.locator("#contact-foot")).to_have_attribute("target", "_top")
    shoot(page, "iframe", width)
