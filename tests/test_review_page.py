"""The admin review page (/review) in headless Chromium against a live server with a logged week:
the gaps with their one-click fixes, and the full report. Screenshots go to test-artifacts/review/."""

import shutil
from pathlib import Path

import pytest
from playwright.sync_api import expect

from assist.index.store import build_index
from assist.kb import check_kb
from tests.conftest import CHUNKING, TINY_KB, live_server
from tests.test_review import STUDENT, _gap_store
from tests.test_sidebar import browser  # noqa: F401  (the Chromium fixture)

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "review"
ADMIN = "review-admin-0123456789"


@pytest.fixture(scope="module")
def server(tmp_path_factory, embedder):
    tmp = tmp_path_factory.mktemp("review-page")
    kb = tmp / "kb"
    shutil.copytree(TINY_KB, kb)
    build_index(kb, tmp / "idx", embedder, chunking=CHUNKING)
    _gap_store(tmp / "fb.db", embedder).close()
    env = {"ASSIST_INDEX_DIR": str(tmp / "idx"), "ASSIST_FEEDBACK_DB": str(tmp / "fb.db"), "ASSIST_API_KEYS": "review-key-0123456789",
           "ASSIST_ADMIN_TOKEN": ADMIN, "ASSIST_KB_DIR": str(kb), "ASSIST_RETENTION_DAYS": "0"}
    with live_server(tmp, env) as url:
        yield url, kb


@pytest.mark.parametrize("width", [390, 1280])  # 1280 last: it applies the fixes
def test_the_review_page_lists_gaps_and_fixes_them(browser, server, width):  # noqa: F811
    url, kb = server
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    ctx = browser.new_context(viewport={"width": width, "height": 1000}, locale="zh-CN")
    ctx.set_default_timeout(15_000)
    page = ctx.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url + "/review")
    page.get_by_label("管理员令牌 Admin token").fill("wrong-token")
    page.get_by_role("button", name="生成复盘 Run review").click()
    expect(page.locator("#status")).to_contain_text("invalid admin token")
    page.get_by_label("管理员令牌 Admin token").fill(ADMIN)
    page.get_by_role("button", name="生成复盘 Run review").click()
    cards = page.locator("article.gap")
    expect(cards.first).to_be_visible()
    expect(page.locator("#status")).to_contain_text("42 条建议")
    texts = cards.all_inner_texts()
    assert any("以旧换新" in t for t in texts) and any("学生" in t for t in texts)  # words all of one topic's requests share
    report = page.frame_locator("#report")
    expect(report.get_by_role("heading", name="Knowledge gaps")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / f"review-{width}.png"), full_page=True)
    if width == 1280:  # the fixes write the KB: once
        trade = cards.filter(has_text="以旧换新")
        trade.get_by_role("button", name="忽略 Ignore").click()
        expect(trade.locator(".done")).to_have_text("已忽略 ignored")
        student = cards.filter(has_text="学生")
        student.locator("input").fill("return-policy")
        student.get_by_role("button", name="加为相似问 Add as similar questions").click()
        expect(student.locator(".done")).to_contain_text("→ return-policy")
        page.screenshot(path=str(ARTIFACTS / "review-fixed-1280.png"), full_page=True)
        article = next(a for a in check_kb(kb)[0].articles if a.id == "return-policy")
        assert set(STUDENT) <= set(article.questions)
        page.get_by_role("button", name="生成复盘 Run review").click()  # the ignored gap is gone
        expect(page.locator("#status")).to_contain_text("42 条建议")
        expect(page.locator("article.gap").first).to_be_visible()
        assert not any("以旧换新" in t for t in page.locator("article.gap").all_inner_texts())
    ctx.close()
    assert not errors, errors
