"""The agent sidebar (api/static) in a real headless Chromium against a real uvicorn serving the tiny KB.

Needs /usr/bin/chromium and a Chinese font from Debian (`bash scripts/install-browser.sh`) and the
pinned `playwright` Python package (dev extra); `playwright install` is never used. Screenshots for
review go to test-artifacts/sidebar/.
"""

import json
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from assist.index.store import build_index
from tests.conftest import CHUNKING, TEST_CIPHER, TINY_KB, live_server

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "test-artifacts" / "sidebar"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
KEY = "test-key"
REFUND = "退款到账要多久？银行卡"
ANGRY = "还没到账！！我要投诉，再不退钱就打12315"

pytestmark = pytest.mark.browser


@dataclass
class Server:
    url: str
    feedback_db: Path
    log: Path


def start_sidebar_server(tmp: Path, embedder, **env: str):
    """uvicorn with the tiny KB, the hashing embedder and the API key `test-key`, on a free port."""
    build_index(TINY_KB, tmp / "idx", embedder, chunking=CHUNKING)
    env = {
        "ASSIST_INDEX_DIR": str(tmp / "idx"),
        "ASSIST_FEEDBACK_DB": str(tmp / "fb.db"),
        "ASSIST_API_KEYS": KEY,
        "ASSIST_ADMIN_TOKEN": "test-admin",
        **env,
    }
    with live_server(tmp, env) as url:
        yield Server(url, tmp / "fb.db", tmp / "server.log")


@pytest.fixture(scope="module")
def server(tmp_path_factory, embedder):
    yield from start_sidebar_server(tmp_path_factory.mktemp("sidebar"), embedder)


SMALL_TURNS = 3
SMALL_TURN_CHARS = 30


@pytest.fixture(scope="module")
def small_server(tmp_path_factory, embedder):
    """Like `server`, but an operator lowered the limits: 3 turns per conversation, 30 characters per turn."""
    yield from start_sidebar_server(tmp_path_factory.mktemp("sidebar-small"), embedder,
                                    ASSIST_MAX_TURNS=str(SMALL_TURNS), ASSIST_MAX_TURN_CHARS=str(SMALL_TURN_CHARS))


@pytest.fixture(scope="module")
def browser():
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: run `bash scripts/install-browser.sh` (Debian chromium + fonts-wqy-microhei)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def _sidebar_opener(browser, server: Server):
    """open_(key=..., width=..., height=..., path=..., setup=...) -> a Page with the sidebar of `server` loaded,
    and the list of JavaScript errors the pages raised. setup(page) runs before the page loads (routes, listeners)."""
    contexts, errors = [], []

    def open_(key: str | None = KEY, width: int = 400, height: int = 900, path: str = "/",
              setup: Callable[[Page], None] | None = None) -> Page:
        ctx = browser.new_context(viewport={"width": width, "height": height}, locale="zh-CN",
                                  permissions=["clipboard-read", "clipboard-write"])
        ctx.set_default_timeout(10_000)
        contexts.append(ctx)
        if key is not None:
            ctx.add_init_script(f"localStorage.setItem('assist.apiKey', {json.dumps(key)})")
        page = ctx.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        if setup:
            setup(page)
        page.goto(server.url + path)
        page.wait_for_selector("html[data-ready='true']")
        return page

    return open_, contexts, errors


def _opened_sidebars(browser, server):
    """Yields the opener of `_sidebar_opener`, then closes its pages and fails on JavaScript errors."""
    open_, contexts, errors = _sidebar_opener(browser, server)
    yield open_
    for ctx in contexts:
        ctx.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture
def open_sidebar(browser, server):
    """open_sidebar(key=..., width=..., height=..., path=..., setup=...) -> a Page with the sidebar loaded."""
    yield from _opened_sidebars(browser, server)


@pytest.fixture
def open_small_sidebar(browser, small_server):
    """Like open_sidebar, against the server configured with lower conversation limits."""
    yield from _opened_sidebars(browser, small_server)


def say(page: Page, text: str, role: str = "customer") -> None:
    page.check(f'input[name="role"][value="{role}"]')
    page.fill("#composer-text", text)
    page.press("#composer-text", "Control+Enter")


def shoot(page: Page, name: str) -> None:
    """Screenshots for review: 400x900 (at the suggestions, and the whole page) and 1280x800."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 400, "height": 900})
    page.locator("#suggestions").evaluate("el => el.scrollIntoView({block: 'start'})")
    page.screenshot(path=ARTIFACTS / f"{name}-400x900.png")
    page.screenshot(path=ARTIFACTS / f"{name}-400-full.png", full_page=True)
    page.set_viewport_size({"width": 1280, "height": 800})
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=ARTIFACTS / f"{name}-1280x800.png")
    page.set_viewport_size({"width": 400, "height": 900})


def wait_feedback(page: Page, event: str, suggestion_id: str) -> None:
    """Until the sidebar's POST /v1/feedback for this event came back 201."""
    page.wait_for_function(
        "([e, id]) => window.assistSidebar.feedback.sent.some(r => r.event === e && r.suggestion_id === id && r.status === 'ok')",
        arg=[event, suggestion_id],
    )


def stored(server: Server, event: str, suggestion_id: str, session_id: str) -> list[dict]:
    with sqlite3.connect(server.feedback_db) as db:
        db.row_factory = sqlite3.Row
        rows = db.execute("SELECT * FROM feedback WHERE event = ? AND suggestion_id = ? AND session_id = ?",
                          (event, suggestion_id, session_id)).fetchall()
    out = [dict(r) for r in rows]
    for row in out:  # encrypted at rest with the tests' ASSIST_STORE_KEY
        row["text"], row["conversation"] = TEST_CIPHER.open(row["text"]), TEST_CIPHER.open(row["conversation"])
    return out


def session_id(page: Page) -> str:
    return page.evaluate("window.assistSidebar.state.sessionId")


# --- the brief's scenarios ----------------------------------------------------------------------------


def test_refund_question_shows_refund_article_template_and_full_article(open_sidebar, server):
    page = open_sidebar()
    page.fill("#cust-name", "李先生")
    page.fill("#cust-order", "DD202611230001")
    say(page, REFUND)

    answer = page.locator('.card.answer[data-id="refund-timing"]')
    expect(answer).to_be_visible()
    expect(page.locator("#answers .card.answer").first).to_have_attribute("data-id", "refund-timing")
    expect(page.locator("#intent .intent-label")).to_have_text("退款进度")
    expect(page.locator("#intent .confidence")).to_have_text("把握高")
    # no number that looks exact but means nothing to an agent: no percentages, no raw scores
    panel = page.locator("#suggestions").inner_text()
    assert "%" not in panel and "相关度" not in panel, panel
    expect(answer.locator(".path")).to_have_text("退款到账时间 > 银行卡")
    assert "退款" in answer.locator(".snippet mark").all_text_contents()
    template = page.locator('.card.template[data-id="tpl-refund-timing"]')
    expect(template.locator(".tpl-text")).to_contain_text("李先生，您的订单 DD202611230001 的退款已经审核通过")
    expect(template.locator("input[data-var]")).to_have_count(0)  # the profile filled everything it needs
    expect(page.locator("#escalation")).to_be_hidden()
    expect(page.locator("#suggestions")).to_have_attribute("aria-busy", "false")
    shoot(page, "refund")

    # "shown" once per suggestion, with the intent and index version of the response
    wait_feedback(page, "shown", "refund-timing")
    (row,) = stored(server, "shown", "refund-timing", session_id(page))
    assert row["kind"] == "article" and row["intent"] == "refund_status" and row["index_version"]

    # the full article in the drawer, opened at the matched section
    answer.get_by_role("button", name="查看全文").click()
    dialog = page.locator("#article")
    expect(dialog).to_be_visible()
    expect(page.locator("#article-title")).to_have_text("退款到账时间")
    expect(dialog.locator("[data-heading='银行卡']")).to_have_class("target")
    expect(dialog.locator(".article-body")).to_contain_text("储蓄卡退款需要 3 到 7 个工作日")
    page.screenshot(path=ARTIFACTS / "article-400x900.png")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()


def test_angry_customer_shows_escalation_banner_with_cues(open_sidebar):
    page = open_sidebar()
    page.fill("#cust-name", "王女士")
    say(page, "我的退款一周了还没到账")
    expect(page.locator("#answers .card.answer").first).to_be_visible()
    expect(page.locator("#escalation")).to_be_hidden()
    say(page, ANGRY)

    banner = page.locator("#escalation")
    expect(banner).to_be_visible()
    expect(banner).to_have_attribute("role", "alert")
    expect(banner).to_contain_text("情绪等级 3/3")
    cues = banner.locator(".cue").all_text_contents()
    assert {"12315", "投诉", "退钱"} <= set(cues), cues
    assert banner.evaluate("el => getComputedStyle(el).backgroundColor") == "rgb(200, 30, 30)"
    expect(page.locator("#esc-flag")).to_have_text("⚠ 情绪升级 3/3")  # also in the (sticky) top bar
    # the apology template asks for what the profile does not know
    tpl = page.locator('.card.template[data-id="tpl-complaint-apology"]')
    expect(tpl.locator('input[data-var="ticket_id"]')).to_be_visible()
    expect(tpl.locator(".slot")).to_have_text("【工单号】")
    expect(tpl.locator(".badge.escalation")).to_have_text("安抚转接")  # labelled as the hand-off reply it is
    expect(page.locator("#templates .card.template").first).to_have_attribute("data-id", "tpl-complaint-apology")  # calm first: Alt+1
    expect(page.locator('.card.template[data-id="tpl-refund-timing"] .badge.escalation')).to_have_count(0)
    shoot(page, "angry")


def test_copy_template_fills_variables_and_stores_a_used_event(open_sidebar, server):
    page = open_sidebar()
    page.fill("#cust-name", "李先生")
    say(page, REFUND)
    card = page.locator('.card.template[data-id="tpl-refund-timing"]')
    expect(card.locator(".slot")).to_have_text("【订单号】")
    expect(page.locator("#templates .card.template").first).to_have_attribute("data-id", "tpl-refund-timing")

    # Alt+1 with a blank required variable: nothing copied, the blank gets the focus
    page.keyboard.press("Alt+1")
    order = card.locator('input[data-var="order_id"]')
    expect(order).to_be_focused()
    expect(page.locator("#toast")).to_contain_text("请先填写：订单号")

    # typing replaces the placeholder live; Alt+1 then copies the finished reply
    order.type("DD202611230009")
    expect(card.locator(".slot")).to_have_count(0)
    expect(card.locator(".tpl-text")).to_contain_text("您的订单 DD202611230009 的退款")
    page.keyboard.press("Alt+1")
    expect(page.locator("#toast")).to_contain_text("已复制")
    clip = page.evaluate("navigator.clipboard.readText()")
    assert clip.startswith("李先生，您的订单 DD202611230009 的退款已经审核通过")

    wait_feedback(page, "used", "tpl-refund-timing")
    (row,) = stored(server, "used", "tpl-refund-timing", session_id(page))
    assert row["kind"] == "template" and row["intent"] == "refund_status" and row["index_version"]
    assert row["latency_ms"] is not None and row["latency_ms"] >= 0
    assert row["text"] == clip
    assert json.loads(row["conversation"]) == [{"role": "customer", "text": REFUND}]

    # "insert into reply" (Alt+Shift+1) puts the text in the agent's box; sending it changed is an "edited" event
    page.keyboard.press("Alt+Shift+1")
    expect(page.locator("#composer-text")).to_have_value(clip)
    expect(page.locator('input[name="role"][value="agent"]')).to_be_checked()
    page.press("#composer-text", "End")
    page.keyboard.type("祝您生活愉快！")
    page.press("#composer-text", "Control+Enter")
    expect(page.locator(".msg.agent .bubble")).to_contain_text("祝您生活愉快！")
    wait_feedback(page, "edited", "tpl-refund-timing")
    (edited,) = stored(server, "edited", "tpl-refund-timing", session_id(page))
    assert edited["text"].endswith("祝您生活愉快！")

    # editing a template in its card is an "edited" event too; the edit sticks until reverted
    delay = page.locator('.card.template[data-id="tpl-shipping-delay"]')
    delay.get_by_role("button", name="编辑").click()
    editor = delay.locator("textarea.tpl-edit")
    expect(editor).to_be_focused()
    editor.fill("您的包裹物流更新较慢，我们已经为您登记催件。")
    delay.get_by_role("button", name="完成编辑").click()
    expect(delay.locator(".tpl-text")).to_have_text("您的包裹物流更新较慢，我们已经为您登记催件。")
    expect(delay.locator(".badge")).to_have_text("已编辑")
    wait_feedback(page, "edited", "tpl-shipping-delay")
    delay.get_by_role("button", name="还原").click()
    expect(delay.locator(".slot")).to_have_text("【快递单号】")

    # ✕ dismisses a card for the rest of the conversation and says so
    other = page.locator('.card.answer[data-id="return-policy"]')
    other.get_by_role("button", name="忽略答案：七天无理由退货").click()
    expect(other).to_have_count(0)
    wait_feedback(page, "dismissed", "return-policy")
    assert stored(server, "dismissed", "return-policy", session_id(page))


def test_wrong_api_key_says_so_and_recovers_after_settings(open_sidebar):
    page = open_sidebar(key="wrong-key")
    say(page, REFUND)
    error = page.locator("#error")
    expect(error).to_contain_text("API key 无效，请在设置中更新")
    expect(page.locator("#conn")).to_have_text("API key 无效")
    shoot(page, "error-auth")

    error.get_by_role("button", name="打开设置").click()
    expect(page.locator("#api-key")).to_be_focused()
    page.fill("#api-key", KEY)
    page.press("#api-key", "Enter")
    expect(page.locator('.card.answer[data-id="refund-timing"]')).to_be_visible()
    expect(error).to_be_hidden()
    assert page.evaluate("localStorage.getItem('assist.apiKey')") == KEY


def test_service_down_shows_retry_and_keeps_old_results(open_sidebar):
    page = open_sidebar()
    say(page, REFUND)
    expect(page.locator('.card.answer[data-id="refund-timing"]')).to_be_visible()
    page.route("**/v1/suggest", lambda route: route.abort("connectionrefused"))
    say(page, "我的快递怎么还没到")
    error = page.locator("#error")
    expect(error).to_contain_text("assist 服务暂时不可用")
    expect(page.locator('.card.answer[data-id="refund-timing"]')).to_be_visible()  # the last good results stay
    shoot(page, "error-down")

    page.unroute("**/v1/suggest")
    page.route("**/v1/suggest", lambda route: route.fulfill(
        status=503, json={"error": {"code": "index_not_loaded", "message": "no index loaded yet"}}))
    error.get_by_role("button", name="重试").click()
    expect(error).to_contain_text("服务器返回 503：no index loaded yet")

    page.unroute("**/v1/suggest")
    error.get_by_role("button", name="重试").click()
    expect(page.locator('.card.answer[data-id="shipping-delay"]')).to_be_visible()
    expect(error).to_be_hidden()


def test_layout_360_stacks_without_horizontal_scroll_and_1280_is_side_by_side(open_sidebar):
    page = open_sidebar(width=360, height=800)
    page.fill("#cust-order", "DD2026112300019999999999999999")
    say(page, "订单DD202611230001888888888888888888888888888888 " + ANGRY)
    expect(page.locator("#escalation")).to_be_visible()
    expect(page.locator("#templates .card.template").first).to_be_visible()
    widths = page.evaluate("({doc: document.documentElement.scrollWidth, body: document.body.scrollWidth, view: window.innerWidth})")
    assert widths["doc"] <= widths["view"] and widths["body"] <= widths["view"], widths
    chat, panel = page.locator(".pane-chat").bounding_box(), page.locator("#suggestions").bounding_box()
    assert chat["y"] + chat["height"] <= panel["y"], "at 360 px the suggestions go below the conversation"
    page.screenshot(path=ARTIFACTS / "angry-360-full.png", full_page=True)

    page.set_viewport_size({"width": 1280, "height": 800})
    chat, panel = page.locator(".pane-chat").bounding_box(), page.locator("#suggestions").bounding_box()
    assert chat["x"] + chat["width"] <= panel["x"] and abs(chat["y"] - panel["y"]) < 2, "side by side on wide screens"
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


# --- behaviour under the hood ---------------------------------------------------------------------------


def test_untrusted_text_is_escaped_and_abstain_is_shown(open_sidebar):
    page = open_sidebar()
    evil = '<img src=x onerror="window.__xss=1">'
    fake = {
        "intent": {"name": "out_of_scope", "label": "无关问题", "confidence": 0.7, "escalate": False, "alternatives": []},
        "emotion": {"level": 0, "escalate": False, "cues": []},
        "answers": [{"article_id": "evil", "title": f"标题{evil}", "heading_path": [evil, "b"], "snippet": f"退款(1){evil}<b>粗</b>",
                     "score": 0.5, "matched_terms": ["退款(1)", "<b>", "img"], "chunk_id": "x"}],
        "templates": [{"template_id": "tpl-evil", "title": evil, "text": f"<script>window.__xss=2</script>【订单号】{evil}",
                       "missing_variables": ["order_id"], "missing": [{"name": "order_id", "label": "订单号"}],
                       "score": 0.3, "tier": None}],
        "abstained": False, "top_similarity": 0.5, "query": "x", "index_version": "v1", "timings_ms": {"total": 1.0},
    }
    page.route("**/v1/suggest", lambda route: route.fulfill(json=fake))
    page.route("**/v1/feedback", lambda route: route.fulfill(status=201, json={"id": 1, "event": "shown", "created_at": "now"}))
    say(page, "随便问问")
    snippet = page.locator('.card.answer[data-id="evil"] .snippet')
    expect(snippet).to_contain_text(evil)
    marks = snippet.locator("mark").all_text_contents()
    assert "退款(1)" in marks and "<b>" in marks and "img" in marks
    assert page.locator("#suggestions img, #suggestions script, #suggestions b").count() == 0
    assert page.evaluate("window.__xss") is None
    # the missing variable gets an inline input, labelled by the response
    expect(page.locator('.card.template[data-id="tpl-evil"]').get_by_label("订单号")).to_have_attribute("data-var", "order_id")

    fake.update(answers=[], abstained=True)
    say(page, "今天天气怎么样")
    expect(page.locator("#answers .abstain")).to_contain_text("知识库中没有足够相关的答案")


def test_latest_request_wins_and_stale_requests_are_aborted(open_sidebar):
    page = open_sidebar()
    out = page.evaluate("""async () => {
        const { SuggestScheduler } = await import('/static/js/api.js');
        const pending = [], results = [], aborted = [];
        let n = 0;
        const s = new SuggestScheduler({
            delayMs: 20,
            fetchSuggest: (payload, signal) => new Promise((resolve) => {
                signal.addEventListener('abort', () => aborted.push(payload.n));
                pending.push(resolve);
            }),
            buildPayload: () => ({ n: ++n }),
            onStart() {}, onResult: (d) => results.push(d.n), onError: (e) => results.push('error: ' + e),
        });
        s.run(); s.run();                       // two requests in flight: the first is aborted
        pending[1]({ n: 2 });                   // the newer answer arrives first...
        await new Promise((r) => setTimeout(r, 0));
        pending[0]({ n: 1 });                   // ...and the stale one after it: dropped
        await new Promise((r) => setTimeout(r, 0));
        s.schedule(); s.schedule(); s.schedule();  // debounced: one request
        await new Promise((r) => setTimeout(r, 80));
        pending[2]({ n: 3 });
        await new Promise((r) => setTimeout(r, 0));
        return { results, aborted, requests: pending.length, dropped: s.dropped };
    }""")
    assert out == {"results": [2, 3], "aborted": [1], "requests": 3, "dropped": 1}


def test_pasted_transcript_and_demo_conversations(open_sidebar):
    page = open_sidebar()
    parsed = page.evaluate("""async () => (await import('/static/js/text.js')).parseTranscript(
        '[10:01] 客户：你好\\n客服: 您好，请问有什么可以帮您？\\ncustomer: my parcel\\nis late\\nAgent (小王): checking\\n系统: 会话转接')""")
    assert parsed == [
        {"role": "customer", "text": "你好"}, {"role": "agent", "text": "您好，请问有什么可以帮您？"},
        {"role": "customer", "text": "my parcel\nis late"}, {"role": "agent", "text": "checking"},
        {"role": "system", "text": "会话转接"},
    ]

    page.get_by_role("button", name="粘贴对话").click()
    page.fill("#paste-text", "客户: 你好\n客服: 您好，请问有什么可以帮您？\n客户: 退款到账要多久？我用的银行卡")
    page.get_by_role("button", name="导入").click()
    expect(page.locator("#messages .msg")).to_have_count(3)
    expect(page.locator('.card.answer[data-id="refund-timing"]')).to_be_visible()

    # the logistics demo: the last turn ("那大概还要几天？") only makes sense with the earlier one
    page = open_sidebar(path="/?demo=logistics")
    expect(page.locator("#intent .intent-label")).to_have_text("物流延迟")
    expect(page.locator('.card.template[data-id="tpl-shipping-delay"] .tpl-text')).to_contain_text("SF1234567890")
    demos = page.locator("#demo-select option").evaluate_all("os => os.map(o => o.value)")
    assert {"refund", "logistics", "invoice", "angry"} <= set(demos)
    page.select_option("#demo-select", "english")
    page.get_by_role("button", name="▶ 回放").click()
    expect(page.locator('.card.answer[data-id="international-shipping"]')).to_be_visible()


# --- limits and labels from the server -------------------------------------------------------------------


def _suggest_traffic(page: Page) -> tuple[list[dict], list[int]]:
    """The bodies the page posts to /v1/suggest and the statuses it gets back (filled as they happen)."""
    bodies, statuses = [], []
    page.on("request", lambda r: bodies.append(json.loads(r.post_data)) if r.url.endswith("/v1/suggest") else None)
    page.on("response", lambda r: statuses.append(r.status) if r.url.endswith("/v1/suggest") else None)
    return bodies, statuses


def test_sidebar_sends_within_the_servers_configured_limits(open_small_sidebar):
    traffic = []
    # the angry demo has 4 turns and is sent as the page starts, while the limits are still being fetched
    page = open_small_sidebar(path="/?demo=angry", setup=lambda p: traffic.append(_suggest_traffic(p)))
    ((bodies, statuses),) = traffic
    expect(page.locator("#escalation")).to_be_visible()
    expect(page.locator("#error")).to_be_hidden()
    assert page.locator("#messages .msg").count() == 4  # the agent still sees the whole conversation
    assert bodies and statuses and all(s == 200 for s in statuses), statuses
    sent = bodies[-1]["conversation"]
    assert len(sent) == SMALL_TURNS
    assert sent[-1] == {"role": "customer", "text": "你们就是骗子！再不退钱我就去投诉，打12315！！！"}

    # a pasted transcript with more turns, and longer ones, than the server takes
    long = "我的快递单号是SF1234567890，物流已经三天没有更新了，到底什么时候能到？"
    assert len(long) > SMALL_TURN_CHARS
    page.get_by_role("button", name="粘贴对话").click()
    page.fill("#paste-text", "\n".join(["客户: 你好", "客服: 您好", "客户: 在吗", "客服: 在的", f"客户: {long}"]))
    page.get_by_role("button", name="导入").click()
    expect(page.locator("#messages .msg")).to_have_count(5)
    page.wait_for_function("n => window.assistSidebar.state.result && window.assistSidebar.state.turns.length === n", arg=5)
    expect(page.locator("#intent")).to_be_visible()
    expect(page.locator("#error")).to_be_hidden()
    sent = bodies[-1]["conversation"]
    assert [t["role"] for t in sent] == ["customer", "agent", "customer"]
    assert sent[-1]["text"] == long[:SMALL_TURN_CHARS]
    assert all(len(t["text"]) <= SMALL_TURN_CHARS for t in sent)
    assert all(s == 200 for s in statuses), statuses


def test_limits_are_fetched_again_when_the_api_key_changes(open_small_sidebar):
    traffic = []
    page = open_small_sidebar(key="wrong-key", path="/?demo=angry", setup=lambda p: traffic.append(_suggest_traffic(p)))
    ((bodies, statuses),) = traffic
    error = page.locator("#error")
    expect(error).to_contain_text("API key 无效")  # and the limits could not be read with that key either
    error.get_by_role("button", name="打开设置").click()
    page.fill("#api-key", KEY)
    page.press("#api-key", "Enter")
    expect(page.locator("#escalation")).to_be_visible()
    expect(error).to_be_hidden()
    assert statuses[-1] == 200 and len(bodies[-1]["conversation"]) == SMALL_TURNS


def test_limits_fetch_failure_falls_back_to_the_default_limits(open_sidebar):
    def setup(page: Page) -> None:
        page.route("**/v1/limits", lambda route: route.abort("connectionrefused"))

    page = open_sidebar(setup=setup)
    say(page, REFUND)
    expect(page.locator('.card.answer[data-id="refund-timing"]')).to_be_visible()
    expect(page.locator("#error")).to_be_hidden()
    assert page.evaluate("window.assistSidebar.state.limits.max_turns") == 50


def test_missing_variable_inputs_are_labelled_from_the_response(open_sidebar):
    page = open_sidebar()
    # placeholders in another order than the variables: the labels must come from `missing`, not from the text
    fake = {
        "intent": {"name": "refund_status", "label": "退款进度", "confidence": 0.9, "escalate": False, "alternatives": []},
        "emotion": {"level": 0, "escalate": False, "cues": []},
        "answers": [],
        "templates": [{"template_id": "tpl-labels", "title": "标签测试", "text": "请提供【另一个标签】和【测试标签XYZ】。",
                       "missing_variables": ["order_id", "ticket_id"],
                       "missing": [{"name": "order_id", "label": "测试标签XYZ"}, {"name": "ticket_id", "label": "另一个标签"}],
                       "score": 0.8, "tier": None}],
        "abstained": True, "top_similarity": 0.1, "query": "x", "index_version": "v1", "timings_ms": {"total": 1.0},
    }
    page.route("**/v1/suggest", lambda route: route.fulfill(json=fake))
    page.route("**/v1/feedback", lambda route: route.fulfill(status=201, json={"id": 1, "event": "shown", "created_at": "now"}))
    say(page, "退款")
    card = page.locator('.card.template[data-id="tpl-labels"]')
    expect(card.locator(".var > span")).to_have_text(["测试标签XYZ", "另一个标签"])
    order = card.get_by_label("测试标签XYZ")
    expect(order).to_have_attribute("data-var", "order_id")
    order.fill("DD202611230001")  # fills the placeholder with that label
    expect(card.locator(".tpl-text")).to_have_text("请提供【另一个标签】和DD202611230001。")
    card.get_by_label("另一个标签").fill("T-1")
    expect(card.locator(".slot")).to_have_count(0)

    # an older server without `missing`: the variables' names stand in as labels
    fake["templates"][0].pop("missing")
    fake["templates"][0]["template_id"] = "tpl-old"
    say(page, "退款呢")
    old = page.locator('.card.template[data-id="tpl-old"]')
    expect(old.locator(".var > span")).to_have_text(["order_id", "ticket_id"])


def test_api_docs_render_offline(browser, server):
    ctx = browser.new_context()
    try:
        page = ctx.new_page()
        outside = []
        page.on("request", lambda r: None if r.url.startswith(server.url) or r.url.startswith("data:") else outside.append(r.url))
        page.goto(server.url + "/docs")
        expect(page.locator(".swagger-ui .opblock-summary-path").first).to_be_visible(timeout=15000)
        expect(page.locator(".swagger-ui")).to_contain_text("/v1/suggest")
        assert outside == [], outside  # nothing fetched from a CDN: the page works on a closed network
    finally:
        ctx.close()


def test_clear_forgets_everything_about_the_previous_customer(open_sidebar):
    page = open_sidebar()
    page.fill("#cust-name", "李先生")
    page.select_option("#cust-tier", "VIP")
    page.fill("#cust-order", "DD202611230001")
    say(page, REFUND)
    card = page.locator('.card.template[data-id="tpl-refund-timing-vip"]')
    expect(card.locator(".tpl-text")).to_contain_text("李先生")
    previous = page.evaluate("window.assistSidebar.state.sessionId")

    page.get_by_role("button", name="清空").click()
    expect(page.locator("#messages .msg")).to_have_count(0)
    assert (page.input_value("#cust-name"), page.input_value("#cust-tier"), page.input_value("#cust-order")) == ("", "普通", "")
    assert page.evaluate("window.assistSidebar.state.sessionId") != previous

    say(page, REFUND)  # the next customer asks the same question
    templates = page.locator("#templates .card.template")
    expect(templates.first).to_be_visible()
    text = " ".join(templates.all_text_contents())
    for leftover in ("李先生", "DD202611230001", "VIP"):
        assert leftover not in text, (leftover, text)
    expect(page.locator('.card.template[data-id="tpl-refund-timing-vip"]')).to_have_count(0)
    shoot(page, "cleared")


def test_a_refused_key_shows_before_any_conversation(open_sidebar):
    page = open_sidebar(key="not-a-key-of-this-server")
    expect(page.locator("#conn")).to_have_text("API key 无效")
    error = page.locator("#error")
    expect(error).to_contain_text("API key 无效")
    error.get_by_role("button", name="打开设置").click()
    page.fill("#api-key", KEY)
    page.press("#api-key", "Enter")
    expect(error).to_be_hidden()
    expect(page.locator("#conn")).to_have_text("就绪")
    say(page, REFUND)
    expect(page.locator("#answers .card.answer").first).to_be_visible()


def test_out_of_scope_english_and_code_conversations(open_sidebar):
    page = open_sidebar()
    say(page, "今天北京天气怎么样")
    expect(page.locator("#answers .abstain")).to_contain_text("知识库中没有足够相关的答案")
    expect(page.locator("#intent .intent-label")).to_contain_text("未识别")
    expect(page.locator("#templates .card.template")).to_have_count(0)  # no reply without an answer
    shoot(page, "out-of-scope")

    page.get_by_role("button", name="清空").click()
    say(page, "do you deliver to Singapore and how long does international shipping take")
    expect(page.locator("#answers .card.answer").first).to_have_attribute("data-id", "international-shipping")
    shoot(page, "english")

    page.get_by_role("button", name="清空").click()
    say(page, "耳机 SKU-20931 退了，订单 DD202611230001 的退款到账要多久")
    expect(page.locator("#answers .card.answer").first).to_have_attribute("data-id", "refund-timing")
    expect(page.locator('.card.template input[data-var="order_id"]')).to_have_count(0)  # the order number was filled in
    shoot(page, "sku")


@pytest.fixture(scope="module")
def clarify_server(tmp_path_factory, embedder):
    """Like `server`, with a wide clarify margin: two intents within 0.5 of each other ask first."""
    yield from start_sidebar_server(tmp_path_factory.mktemp("sidebar-clarify"), embedder,
                                    ASSIST_SUGGEST__CLARIFY_MARGIN="0.5")


@pytest.fixture
def open_clarify_sidebar(browser, clarify_server):
    yield from _opened_sidebars(browser, clarify_server)


def test_an_unsure_intent_offers_a_clarifying_question_to_send(open_clarify_sidebar):
    page = open_clarify_sidebar()
    say(page, "我的钱和包裹都没消息")
    box = page.locator("#clarify")
    expect(box).to_be_visible()
    options = box.locator(".alt").all_text_contents()
    assert set(options) == {"物流延迟", "退款进度"}, options
    question = box.locator(".clarify-question").inner_text()
    assert question.startswith("为了更准确地帮您处理") and "「物流延迟」" in question, question
    expect(page.locator("#route .queue")).to_have_text("logistics")  # the intent's route in intents.yaml
    shoot(page, "clarify")
    box.get_by_role("button", name="插入追问").click()
    expect(page.locator("#composer-text")).to_have_value(question)
    expect(page.locator('input[name="role"][value="agent"]')).to_be_checked()


def test_a_transfer_shows_the_route_and_a_handoff_note_to_copy(open_sidebar):
    page = open_sidebar()
    page.select_option("#cust-tier", "VIP")
    say(page, "我的退款一周了还没到账")
    expect(page.locator("#route .queue")).to_have_text("after_sales")
    expect(page.locator("#handoff")).to_have_count(0)
    say(page, ANGRY + "，电话 13812345678")
    route = page.locator("#route")
    expect(route.locator(".queue")).to_have_text("supervisor")
    expect(route.locator(".priority")).to_have_text("P1")
    note = page.locator("#handoff .handoff-note")
    expect(note).to_contain_text("【转接】supervisor · 优先级 P1")
    expect(note).to_contain_text("客户等级：VIP")
    text = note.inner_text()
    assert "13812345678" not in text and "客户原话" in text and "已推荐知识" in text, text  # redacted; says what was shown
    page.locator("#handoff-copy").click()
    expect(page.locator("#toast")).to_have_text("已复制转接说明")
    assert page.evaluate("navigator.clipboard.readText()") == text
    shoot(page, "handoff")


def test_the_matched_faq_question_is_shown_above_the_snippet(open_sidebar):
    """An answer found through a FAQ question shows that question (直接命中 when asked word for word)."""
    page = open_sidebar()

    def with_question(route):
        response = route.fetch()
        body = response.json()
        body["answers"][0].update(matched_question="退款一般几天能到账？", direct=True)
        if len(body["answers"]) > 1:
            body["answers"][1].update(matched_question="退到银行卡要多久", direct=False)
        route.fulfill(response=response, json=body)

    page.route("**/v1/suggest", with_question)
    say(page, REFUND)
    first = page.locator("#answers .card.answer").first
    expect(first.locator(".matched-question")).to_have_text("直接命中退款一般几天能到账？")
    expect(first.locator(".matched-question.direct")).to_have_count(1)
    order = first.evaluate("card => [...card.children].map(c => c.className)")
    assert order.index("matched-question direct") < order.index("snippet"), order  # above the snippet
    expect(page.locator("#answers .card.answer").nth(1).locator(".matched-question")).to_have_text("匹配问题退到银行卡要多久")
