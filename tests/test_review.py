"""The suggestion log, retention and erasure, and the weekly review: KPIs, items, gaps, fixes, experiments."""

import json
import sqlite3
import time
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.main import create_app
from assist.cli import app as cli
from assist.feedback import FeedbackEvent, FeedbackStore, HelpEvent, retention_cutoff
from assist.index.store import build_index, load_index
from assist.kb import check_kb
from assist.review import ReviewOptions, apply_gap, build_review, ignore_gap, two_proportion_test, wilson
from assist.suggestlog import LogWriter, SuggestionRecord, customer_ref, dequantize, quantize
from tests.conftest import CHUNKING, TEST_CIPHER, TINY_KB
from tests.test_api import AGENT, BOSS, make_settings

runner = CliRunner()
NOW = datetime.now(timezone.utc)


def week():
    """The last seven days up to a moment from now (rows written during the test are inside)."""
    end = datetime.now(timezone.utc) + timedelta(seconds=1)
    return end - timedelta(days=7), end


def ago(**kw) -> str:
    return (NOW - timedelta(**kw)).isoformat(timespec="milliseconds")


def rec(rid, query="退款多久到账", session=None, answers=("refund-timing",), templates=(), abstained=False, intent="refund_status",
        confidence=0.9, created=None, arm=None, vector=None, escalate=False, latency=10.0):
    return SuggestionRecord(rid, session or f"s-{rid}", None, query, intent, confidence, abstained, escalate, tuple(answers), tuple(templates),
                            0.9, latency, "v1", "hash", arm, created or ago(hours=1), vector)


@pytest.fixture(scope="module")
def built(tmp_path_factory, embedder):
    tmp = tmp_path_factory.mktemp("review")
    build_index(TINY_KB, tmp / "idx", embedder, chunking=CHUNKING)
    return tmp


# --- the suggestion log --------------------------------------------------------------------------------


def test_every_suggestion_is_logged_redacted_with_its_request_id(built):
    with TestClient(create_app(make_settings(built, feedback_db=built / "log.db"))) as c:
        body = {"conversation": [{"role": "customer", "text": "退款多久到账？我手机 13812345678"}],
                "customer": {"id": "C-889", "name": "李先生"}, "session_id": "conv-log-1"}
        out = c.post("/v1/suggest", json=body, headers=AGENT).json()
        c.post("/v1/feedback", json={"event": "used", "suggestion_id": out["answers"][0]["article_id"], "kind": "article",
                                     "session_id": "conv-log-1", "request_id": out["request_id"]}, headers=AGENT)
        assert c.app.state.suggestion_log.flush()
    store = FeedbackStore(built / "log.db", TEST_CIPHER)
    [row] = store.suggestions("2000")
    assert store.feedback_between("2000")[0].request_id == out["request_id"]
    assert row.request_id == out["request_id"] and row.session_id == "conv-log-1"
    assert "13812345678" not in row.query and row.query.startswith("退款多久到账")
    store.add_suggestions([rec("raw", "我手机 13812345678，邮箱 li@example.com")])  # whoever writes, the store redacts
    assert store.suggestions("2000")[-1].query == "我手机 [手机号]，邮箱 [邮箱]"
    assert row.answers == tuple(a["article_id"] for a in out["answers"]) and row.intent == out["intent"]["name"]
    assert row.customer_ref == customer_ref({"id": "C-889"}) and "C-889" not in json.dumps(row.__dict__, default=str)
    assert row.vector is not None and abs(np.linalg.norm(dequantize(row.vector)) - 1) < 0.02
    assert store.feedback_between("2000")[0].request_id == out["request_id"]


def test_a_locked_store_never_fails_or_slows_a_suggest_request(built):
    db = built / "locked.db"
    # retention off: the start-up purge would hold the file while the lock below is taken
    with TestClient(create_app(make_settings(built, feedback_db=db, retention_days=0))) as c:
        writer = c.app.state.suggestion_log
        lock = sqlite3.connect(db, timeout=5, isolation_level=None)
        lock.execute("BEGIN EXCLUSIVE")  # another process holds the file
        try:
            times = []
            for n in range(20):
                start = time.perf_counter()
                r = c.post("/v1/suggest", json={"conversation": [{"role": "customer", "text": f"退款多久到账 {n}"}]}, headers=AGENT)
                times.append(time.perf_counter() - start)
                assert r.status_code == 200
            assert max(times) < 2  # the store's busy timeout is 10 s: no request waited for it
            assert writer.pending >= 1
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        deadline = time.monotonic() + 30
        while writer.pending and time.monotonic() < deadline:  # written at a later flush
            time.sleep(0.1)
        assert writer.pending == 0
    assert len(FeedbackStore(db, TEST_CIPHER).suggestions("2000")) == 20


def test_the_writer_keeps_rows_while_the_store_refuses_and_drops_the_oldest_past_its_limit():
    class Flaky:
        def __init__(self):
            self.down, self.rows = True, []

        def add_suggestions(self, batch):
            if self.down:
                raise sqlite3.OperationalError("database is locked")
            self.rows += batch

    store, drops = Flaky(), []
    writer = LogWriter(store, flush_seconds=3600, max_pending=3, on_drop=drops.append)
    for n in range(5):
        writer.put(rec(str(n)))
    assert writer.flush() is False and writer.pending == 3 and sum(drops) == 2
    store.down = False
    assert writer.flush() and [r.request_id for r in store.rows] == ["2", "3", "4"]
    writer.close()


def test_quantized_vectors_keep_cosines():
    rng = np.random.default_rng(1)
    a, b = (v / np.linalg.norm(v) for v in rng.normal(size=(2, 384)))
    assert abs(float(dequantize(quantize(a)) @ dequantize(quantize(b))) - float(a @ b)) < 0.01


# --- retention and erasure -------------------------------------------------------------------------------


def _filled(path):
    store = FeedbackStore(path, TEST_CIPHER)
    store.add_suggestions([rec("old", created=ago(days=100), session="s-old"), rec("new", session="s-new"),
                           SuggestionRecord("cust", "s-cust", customer_ref({"id": "C-1"}), "q", "x", 0.5, False, False, (), (), None, 1, "v", "m")])
    for sid in ("s-old", "s-new", "s-cust"):
        store.add(FeedbackEvent("used", "refund-timing", "article", session_id=sid))
    store.add_help(HelpEvent("search", "s-new", "退款", abstained=False))
    store.add_help(HelpEvent("view", "s-help", article_id="refund-timing", created_at=ago(days=200)))
    with sqlite3.connect(path) as db:  # feedback rows carry the store's own time: age one by hand
        db.execute("UPDATE feedback SET created_at = ? WHERE session_id = 's-old'", (ago(days=100),))
    return store


def test_retention_purges_what_is_older_than_the_setting(tmp_path):
    store = _filled(tmp_path / "fb.db")
    deleted = store.purge(retention_cutoff(90))
    assert deleted == {"feedback": 1, "suggestions": 1, "help_events": 1}
    assert {r.request_id for r in store.suggestions("2000")} == {"new", "cust"}
    store.close()
    result = runner.invoke(cli, ["data", "purge", "--older-than", "1", "--db", str(tmp_path / "fb.db")])
    assert result.exit_code == 0 and "suggestions 0" in result.output


def test_erasure_by_session_and_by_customer(tmp_path):
    store = _filled(tmp_path / "fb.db")
    store.close()
    result = runner.invoke(cli, ["data", "erase", "--session", "s-new", "--db", str(tmp_path / "fb.db")])
    assert result.exit_code == 0 and "feedback 1, suggestions 1, help_events 1" in result.output
    result = runner.invoke(cli, ["data", "erase", "--customer", "C-1", "--db", str(tmp_path / "fb.db")])
    assert result.exit_code == 0 and "feedback 1, suggestions 1" in result.output
    store = FeedbackStore(tmp_path / "fb.db", TEST_CIPHER)
    assert {r.request_id for r in store.suggestions("2000")} == {"old"}
    assert {e.session_id for e in store.events()} == {"s-old"}
    assert runner.invoke(cli, ["data", "erase", "--db", str(tmp_path / "fb.db")]).exit_code == 1


def test_admin_erase_endpoint(built, tmp_path):
    _filled(tmp_path / "fb.db").close()
    with TestClient(create_app(make_settings(built, feedback_db=tmp_path / "fb.db", retention_days=0))) as c:
        assert c.post("/v1/admin/erase", json={"session_id": "s-new"}, headers=AGENT).status_code == 403
        r = c.post("/v1/admin/erase", json={"customer_id": "C-1"}, headers=BOSS)
        assert r.status_code == 200 and r.json()["erased"]["suggestions"] == 1
        assert c.post("/v1/admin/erase", json={}, headers=BOSS).status_code == 422


def test_the_server_purges_on_start(built, tmp_path):
    _filled(tmp_path / "fb.db").close()
    with TestClient(create_app(make_settings(built, feedback_db=tmp_path / "fb.db", retention_days=90))):
        deadline = time.monotonic() + 10
        while len(FeedbackStore(tmp_path / "fb.db", TEST_CIPHER).suggestions("2000")) == 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    assert {r.request_id for r in FeedbackStore(tmp_path / "fb.db", TEST_CIPHER).suggestions("2000")} == {"new", "cust"}


# --- the review's numbers --------------------------------------------------------------------------------


def test_wilson_interval_and_two_proportion_test():
    assert wilson(0, 0) is None
    lo, hi = wilson(80, 100)
    assert lo == pytest.approx(0.7112, abs=1e-3) and hi == pytest.approx(0.8666, abs=1e-3)
    assert two_proportion_test(80, 100, 60, 100) < 0.01
    assert two_proportion_test(52, 100, 50, 100) > 0.5


def test_kpis_items_never_suggested_stale_and_week_over_week(tmp_path, embedder):
    kb, _ = check_kb(TINY_KB)
    store = FeedbackStore(tmp_path / "fb.db", TEST_CIPHER)
    records = [rec(f"a{n}", answers=("refund-timing", "return-policy"), templates=("tpl-refund-timing",)) for n in range(10)]
    records += [rec("ab", abstained=True, answers=()), rec("esc", escalate=True, latency=30.0)]
    records += [rec(f"p{n}", created=ago(days=10)) for n in range(4)]  # the previous week
    store.add_suggestions(records)
    for n in range(6):
        store.add(FeedbackEvent("used", "refund-timing", "article", session_id=f"s-a{n}", request_id=f"a{n}"))
    store.add(FeedbackEvent("edited", "tpl-refund-timing", "template", session_id="s-a6"))  # joined by session
    store.add(FeedbackEvent("dismissed", "return-policy", "article", session_id="s-a7", request_id="a7"))
    for n in range(4):
        store.add(FeedbackEvent("dismissed", "refund-timing", "article", request_id=f"p{n}"))
    with sqlite3.connect(tmp_path / "fb.db") as db:
        db.execute("UPDATE feedback SET created_at = ? WHERE request_id LIKE 'p%'", (ago(days=10),))
    report = build_review(store, *week(), kb, None, embedder, ReviewOptions(stale_days=20, stale_min_shown=5))
    t = report["totals"]
    assert t["suggestions"] == 12 and t["acceptance_rate"] == round(6 / 11, 4) and t["edit_rate"] == round(1 / 11, 4)
    assert t["dismiss_rate"] == round(1 / 11, 4) and t["abstain_rate"] == round(1 / 12, 4) and t["escalation_rate"] == round(1 / 12, 4)
    assert report["previous"]["suggestions"] == 4 and report["previous"]["acceptance_rate"] == 0.0
    assert report["change"]["acceptance_rate"] == round(6 / 11, 4)
    item = next(r for r in report["items"] if r["id"] == "refund-timing")
    assert (item["shown"], item["used"], item["acceptance_rate"]) == (11, 6, round(6 / 11, 4)) and item["acceptance_ci95"] == wilson(6, 11)
    never = {r["id"] for r in report["never_suggested"]}
    assert "shipping-delay" in never and "refund-timing" not in never and "draft-notice" not in never
    assert [r["id"] for r in report["stale"]] == ["refund-timing", "return-policy"]  # updated 2026-10-01, shown 11 and 10 times
    assert len(report["days"]) >= 1 and sum(d["suggestions"] for d in report["days"]) == 12


def test_experiment_arms_say_plainly_whether_they_differ(tmp_path):
    store = FeedbackStore(tmp_path / "fb.db", TEST_CIPHER)
    rows = [rec(f"a{n}", arm="a") for n in range(200)] + [rec(f"b{n}", arm="b") for n in range(200)]
    store.add_suggestions(rows)
    used = [f"a{n}" for n in range(100)] + [f"b{n}" for n in range(150)]
    for rid in used:
        store.add(FeedbackEvent("used", "refund-timing", "article", request_id=rid))
    arms = build_review(store, *week())["experiments"]
    assert [a["arm"] for a in arms] == ["a", "b"] and arms[1]["verdict"].startswith("significant")
    store2 = FeedbackStore(tmp_path / "fb2.db", TEST_CIPHER)
    store2.add_suggestions(rows)
    for rid in [f"a{n}" for n in range(100)] + [f"b{n}" for n in range(104)]:
        store2.add(FeedbackEvent("used", "refund-timing", "article", request_id=rid))
    assert build_review(store2, *week())["experiments"][1]["verdict"].startswith("not significant")


# --- gaps and their fixes ---------------------------------------------------------------------------------

TRADE_IN = ["以旧换新 旧机 回收 估价", "旧机 回收 以旧换新 怎么 估价", "以旧换新 估价 旧机 折抵", "旧机 以旧换新 回收 上门",
            "以旧换新 旧机 估价 多少钱", "回收 旧机 以旧换新 补贴"]
STUDENT = ["学生 优惠 认证 学生证", "学生证 认证 学生 优惠 价格", "学生 认证 优惠 怎么 弄", "学生 优惠 学生证 过期",
           "学生 学生证 认证 失败 优惠"]


def _gap_store(path, embedder):
    store = FeedbackStore(path, TEST_CIPHER)
    rows, n = [], 0
    for text in TRADE_IN + STUDENT:
        for _ in range(2):
            n += 1
            rows.append(rec(f"g{n}", text, abstained=True, answers=(), vector=quantize(embedder.encode_queries([text])[0])))
    for k, text in enumerate(["退款 到账 银行卡", "快递 物流 三天", "密码 重置 登录", "发票 下载 订单"] * 5):
        rows.append(rec(f"ok{k}", text, vector=quantize(embedder.encode_queries([text])[0])))
    store.add_suggestions(rows)
    return store


def test_gaps_group_requests_by_topic_and_suggest_a_fix(tmp_path, embedder, built):
    index = load_index(built / "idx", embedder)
    store = _gap_store(tmp_path / "fb.db", embedder)
    gaps = build_review(store, *week(), index.kb, index, embedder)["gaps"]
    top = {frozenset(g["queries"]) for g in gaps[:2]}
    assert top == {frozenset(TRADE_IN), frozenset(STUDENT)}
    first = gaps[0]
    assert first["volume"] == 2 * first["distinct"] and first["reasons"] == {"abstained": first["volume"]}
    assert first["nearest"]["id"] in {a.id for a in index.kb.published}
    assert first["suggested"]["action"] in ("new_article", "add_similar") and len(first["examples"]) == 5


def test_an_ignored_gap_stays_out_of_later_reviews(tmp_path, embedder, built):
    index = load_index(built / "idx", embedder)
    store = _gap_store(tmp_path / "fb.db", embedder)
    gaps = build_review(store, *week(), index.kb, index, embedder)["gaps"]
    trade = next(g for g in gaps if set(g["queries"]) == set(TRADE_IN))
    ignore_gap(store, trade)
    again = build_review(store, *week(), index.kb, index, embedder)["gaps"]
    assert not any(set(g["queries"]) & set(TRADE_IN) for g in again)
    assert any(set(g["queries"]) == set(STUDENT) for g in again)


def test_apply_adds_similar_questions_and_eval_cases_and_refuses_a_broken_kb(tmp_path, kb_copy, embedder):
    store = FeedbackStore(tmp_path / "fb.db", TEST_CIPHER)
    gap = {"id": "gap-0a1b2c3d", "queries": ["旧手机能折价吗", "以旧换新怎么估价", "不喜欢能不能退"], "centroid": None}
    article = kb_copy / "articles" / "refund" / "return-policy.md"
    article.write_text(article.read_text(encoding="utf-8").replace("status: published", "questions:\n  - 不喜欢能不能退\nstatus: published"),
                       encoding="utf-8")
    evals = tmp_path / "cases.jsonl"
    done = apply_gap(store, gap, kb_copy, "return-policy", evals)
    assert done["questions_added"] == ["旧手机能折价吗", "以旧换新怎么估价"]  # the one it already asks is not added twice
    kb, problems = check_kb(kb_copy)
    assert problems == [] and next(a for a in kb.articles if a.id == "return-policy").questions == ("不喜欢能不能退", "旧手机能折价吗", "以旧换新怎么估价")
    cases = [json.loads(line) for line in evals.read_text(encoding="utf-8").splitlines()]
    assert [c["conversation"][0]["text"] for c in cases] == done["questions_added"]
    assert all(c["tags"] == ["review"] and c["relevant"] == ["return-policy"] and c["intent"] == "refund_status" for c in cases)
    # an article without questions: its title becomes the standard question
    apply_gap(store, {**gap, "id": "gap-11111111", "queries": ["银行卡退款几天到"]}, kb_copy, "refund-timing", None)
    kb, problems = check_kb(kb_copy)
    assert problems == [] and next(a for a in kb.articles if a.id == "refund-timing").questions == ("退款到账时间", "银行卡退款几天到")
    # a FAQ entry gets them as similar questions
    apply_gap(store, {**gap, "id": "gap-22222222", "queries": ["电子发票去哪下"]}, kb_copy, "faq-invoice-download", None)
    assert "电子发票去哪下" in next(a for a in check_kb(kb_copy)[0].articles if a.id == "faq-invoice-download").questions
    # asking a question another article already asks would fail kb check: nothing is written
    before = article.read_text(encoding="utf-8")
    with pytest.raises(Exception, match="not found|no article"):
        apply_gap(store, gap, kb_copy, "nope", None)
    assert article.read_text(encoding="utf-8") == before
    assert {d["gap_key"] for d in store.decisions()} == {"gap-0a1b2c3d", "gap-11111111", "gap-22222222"}


def test_review_command_writes_the_report_and_apply_uses_it(tmp_path, kb_copy, embedder, built, monkeypatch, store_key_env):
    store = _gap_store(tmp_path / "fb.db", embedder)
    store.close()
    monkeypatch.setenv("ASSIST_INDEX_DIR", str(built / "idx"))
    monkeypatch.setenv("ASSIST_EMBEDDING__BACKEND", "hashing")
    from assist.config import get_settings

    get_settings.cache_clear()
    try:
        result = runner.invoke(cli, ["review", "--since", "7d", "--db", str(tmp_path / "fb.db"), "--out", str(tmp_path / "rev")])
        assert result.exit_code == 0, result.output
        report = json.loads((tmp_path / "rev" / "report.json").read_text(encoding="utf-8"))
        html = (tmp_path / "rev" / "report.html").read_text(encoding="utf-8")
        assert "<svg" in html and "Knowledge gaps" in html and "<script" not in html and report["gaps"][0]["id"] in html
        gid = report["gaps"][0]["id"]
        result = runner.invoke(cli, ["review", "apply", gid, "--add-to", "return-policy", "--report", str(tmp_path / "rev" / "report.json"),
                                     "--kb", str(kb_copy), "--eval-file", str(tmp_path / "cases.jsonl"), "--db", str(tmp_path / "fb.db")])
        assert result.exit_code == 0 and "similar questions added to return-policy" in result.output, result.output
        bad = runner.invoke(cli, ["review", "apply", "gap-00000000", "--ignore", "--report", str(tmp_path / "rev" / "report.json"),
                                  "--db", str(tmp_path / "fb.db")])
        assert bad.exit_code == 1 and "no gap" in bad.output and "Traceback" not in bad.output
        both = runner.invoke(cli, ["review", "apply", gid, "--ignore", "--add-to", "x", "--report", str(tmp_path / "rev" / "report.json")])
        assert both.exit_code == 1 and "either" in both.output
    finally:
        get_settings.cache_clear()


def test_admin_review_endpoints(built, tmp_path, embedder):
    _gap_store(tmp_path / "fb.db", embedder).close()
    with TestClient(create_app(make_settings(built, feedback_db=tmp_path / "fb.db", retention_days=0))) as c:
        assert c.get("/v1/admin/review", headers=AGENT).status_code == 403
        report = c.get("/v1/admin/review?since=7d", headers=BOSS).json()
        assert report["totals"]["suggestions"] == 42 and report["gaps"]
        page = c.get("/v1/admin/review?since=7d&format=html", headers=BOSS)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        gid = report["gaps"][0]["id"]
        assert c.post("/v1/admin/review/apply", json={"gap_id": gid, "add_to": "nope"}, headers=BOSS).status_code == 404
        r = c.post("/v1/admin/review/ignore", json={"gap_id": gid}, headers=BOSS)
        assert r.status_code == 200 and r.json()["action"] == "ignored"
        assert gid not in {g["id"] for g in c.get("/v1/admin/review?since=7d", headers=BOSS).json()["gaps"]}
        assert c.post("/v1/admin/review/apply", json={"gap_id": gid}, headers=BOSS).status_code == 422
        assert c.post("/v1/admin/review/ignore", json={"gap_id": "gap-00000000"}, headers=BOSS).status_code == 404
        assert c.get("/v1/admin/review?since=soon", headers=BOSS).status_code == 422
        assert c.get("/review").status_code == 200


# --- feedback-weighted ranking --------------------------------------------------------------------------


def test_acceptance_rates_are_smoothed_and_decay_with_age():
    from assist.feedback import StoredFeedback
    from assist.priors import compute_nudges

    now = datetime.now(timezone.utc)
    t = lambda days: (now - timedelta(days=days)).isoformat()  # noqa: E731
    logged = [rec(f"g{n}", answers=("good",), created=t(0)) for n in range(20)] + [rec(f"b{n}", answers=("bad",), created=t(0)) for n in range(20)]
    logged += [rec("once", answers=("rare",), created=t(0))]
    used = [StoredFeedback("used", "good", "article", created_at=t(0)) for _ in range(18)]
    used += [StoredFeedback("used", "bad", "article", created_at=t(0)) for _ in range(2)] + [StoredFeedback("used", "rare", "article", created_at=t(0))]
    nudges = compute_nudges(logged, used, now, half_life_days=14, strength=20, weight=0.1)
    assert nudges[("article", "good")] > 0 > nudges[("article", "bad")]
    assert abs(nudges[("article", "rare")]) < abs(nudges[("article", "good")])  # one showing moves little
    old = [StoredFeedback("used", "good", "article", created_at=t(28)) for _ in range(18)] + used[18:]
    aged = compute_nudges(logged, old, now, half_life_days=14, strength=20, weight=0.1)
    assert aged[("article", "good")] < nudges[("article", "good")]  # four-week-old uses count a quarter
    assert compute_nudges(logged, used, now, 14, 20, weight=0) == {}


def test_nudges_reorder_answers_and_the_server_computes_them_when_switched_on(built, tmp_path, tiny_index):
    from assist.suggest.pipeline import Suggester

    s = Suggester(tiny_index, make_settings(tmp_path).suggest)
    conversation = [{"role": "customer", "text": "退货 退款 多久到账"}]
    first, second = [a.article_id for a in s.suggest(conversation).answers][:2]
    s.nudges = {("article", second): 1.0}
    assert [a.article_id for a in s.suggest(conversation).answers][0] == second
    store = FeedbackStore(tmp_path / "fb.db", TEST_CIPHER)
    store.add_suggestions([rec(f"r{n}", answers=(first, second)) for n in range(10)])
    for n in range(10):
        store.add(FeedbackEvent("used", second, "article", request_id=f"r{n}"))
    store.close()
    with TestClient(create_app(make_settings(built, feedback_db=tmp_path / "fb.db", retention_days=0,
                                             feedback_ranking={"weight": 0.05}))) as c:
        deadline = time.monotonic() + 10
        while not c.app.state.service.current.suggester.nudges and time.monotonic() < deadline:
            time.sleep(0.05)
        nudges = c.app.state.service.current.suggester.nudges
    assert nudges[("article", second)] > 0 > nudges[("article", first)]
    with TestClient(create_app(make_settings(built, feedback_db=tmp_path / "fb.db", retention_days=0))) as c:
        assert c.app.state.service.current.suggester.nudges == {}  # off by default
