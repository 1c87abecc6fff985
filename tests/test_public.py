"""The customer help centre's API: only published public items, never internal sections; rate limit,
CORS, cache headers, feedback, the contact redirect and the deflection numbers."""

import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.main import create_app
from api.public import TokenBucket, client_address, parse_networks
from assist.cli import app as cli
from assist.feedback import FeedbackStore, HelpEvent
from assist.helpcentre import public_body
from assist.helpreport import help_report, parse_since
from assist.index.chunk import split_sections
from assist.index.store import build_index
from assist.kb import check_kb, load_kb
from tests.conftest import CHUNKING, TEST_CIPHER, TINY_KB
from tests.test_api import make_settings

REPO = Path(__file__).resolve().parent.parent
SECRET = "ZEBRA-7"  # written only in refund-timing's internal section
INTERNAL_FAQ = "ORCA-3"  # written only in an internal FAQ entry
SESSION = {"X-Help-Session": "tab-0123456789abcdef"}


@pytest.fixture(scope="module")
def built(tmp_path_factory, embedder):
    tmp = tmp_path_factory.mktemp("public")
    build_index(TINY_KB, tmp / "idx", embedder, chunking=CHUNKING)
    return tmp


def _client(tmp, **overrides) -> TestClient:
    return TestClient(create_app(make_settings(tmp, **overrides)))


@pytest.fixture(scope="module")
def client(built):
    with _client(built, public_origins="https://shop.example.com", public_rate=1000, public_burst=1000) as c:
        yield c


def test_categories_list_only_what_customers_may_see(client):
    r = client.get("/v1/public/categories")
    assert r.status_code == 200 and r.headers["cache-control"] == "public, max-age=60"
    body = r.json()
    # 退款售后: refund-timing + return-policy (the internal FAQ entry of that category is not counted);
    # 发票: the public FAQ entry; 账户安全: password-reset. 物流 / Logistics items are internal, 会员 a draft.
    assert {c["name"]: c["count"] for c in body["categories"]} == {"退款售后": 2, "发票": 1, "账户安全": 1}
    assert body["contact_url"] == "/help/contact" and body["max_query_chars"] == 100


def test_search_finds_public_answers_with_terms_and_never_internal_text(client):
    r = client.get("/v1/public/search", params={"q": "退款多久到账 银行卡"}, headers=SESSION)
    body = r.json()
    assert r.status_code == 200 and not body["abstained"] and r.headers["cache-control"] == "private, max-age=60"
    assert body["results"][0]["id"] == "refund-timing"
    assert "退款" in body["results"][0]["matched_terms"]
    assert SECRET not in r.text and "客服处理要点" not in r.text
    assert {"intent", "templates", "score"}.isdisjoint(body["results"][0]) and "tpl-" not in r.text


def test_asking_an_internal_faq_question_word_for_word_gives_nothing_of_it(client):
    r = client.get("/v1/public/search", params={"q": "客服最多能给多少补偿券？"})
    assert "faq-internal-compensation" not in r.text and INTERNAL_FAQ not in r.text
    r = client.get("/v1/public/search", params={"q": "坐席补偿权限是多少"})
    assert "faq-internal-compensation" not in r.text


def test_a_public_faq_question_is_answered_with_the_matched_question(client):
    body = client.get("/v1/public/search", params={"q": "发票怎么下载"}).json()
    assert body["results"][0]["id"] == "faq-invoice-download" and body["results"][0]["matched_question"] == "发票怎么下载"


def test_nonsense_abstains_and_offers_contact(client):
    body = client.get("/v1/public/search", params={"q": "量子纠缠火星殖民计划"}).json()
    assert body["abstained"] and body["results"] == [] and body["contact_url"] == "/help/contact"


def test_empty_query_with_category_browses_it_by_title(client):
    body = client.get("/v1/public/search", params={"category": "退款售后"}).json()
    assert [h["id"] for h in body["results"]] == ["return-policy", "refund-timing"]  # 七天… before 退款… by code point
    assert client.get("/v1/public/search", params={"category": "会员"}).json()["results"] == []  # the draft's category
    filtered = client.get("/v1/public/search", params={"q": "退款 到账", "category": "发票"}).json()
    assert all(h["category"] == "发票" for h in filtered["results"])


def test_articles_show_public_sections_only_and_404_for_the_rest(client):
    r = client.get("/v1/public/articles/refund-timing")
    page = r.json()
    assert r.status_code == 200 and page["title"] == "退款到账时间"
    assert "银行卡" in page["html"] and SECRET not in page["html"] and "客服处理要点" not in page["html"]
    assert "<h1>" not in page["html"]  # the title is the page's heading, not repeated
    assert {"id": "return-policy", "title": "七天无理由退货"} in page["related"]
    for hidden in ("draft-notice", "shipping-delay", "faq-internal-compensation", "tpl-refund-timing", "nope"):
        r = client.get(f"/v1/public/articles/{hidden}")
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", hidden


def test_images_are_served_from_the_index_version_and_only_public_ones(client, built):
    page = client.get("/v1/public/articles/return-policy").json()
    src = re.search(r'<img src="([^"]+)" alt="([^"]+)"', page["html"])
    assert src and src.group(1) == "/v1/public/assets/return-steps.png" and 'loading="lazy"' in page["html"]
    r = client.get(src.group(1))
    assert r.status_code == 200 and r.headers["content-type"] == "image/png" and r.content[:4] == b"\x89PNG"
    assert client.get("/v1/public/assets/../kb.json").status_code == 404
    assert client.get("/v1/public/assets/nothing.png").status_code == 404


def test_raw_html_in_an_article_is_shown_as_text(tmp_path, embedder, kb_copy):
    article = kb_copy / "articles" / "account" / "password-reset.md"
    article.write_text(article.read_text(encoding="utf-8") + '\n<script>alert(1)</script> [x](javascript:alert(1))\n', encoding="utf-8")
    build_index(kb_copy, tmp_path / "idx", embedder, chunking=CHUNKING)
    with _client(tmp_path) as c:
        html = c.get("/v1/public/articles/password-reset").json()["html"]
    assert "<script>" not in html and "&lt;script&gt;" in html and 'href="javascript:' not in html


def test_feedback_is_recorded_redacted_and_unknown_articles_are_404(client, built):
    r = client.post("/v1/public/feedback", json={"article_id": "refund-timing", "helpful": False,
                                                 "comment": "没用，我手机 13812345678", "query": "退款"}, headers=SESSION)
    assert r.status_code == 201 and r.json() == {"recorded": True}
    store = FeedbackStore(built / "feedback.db", TEST_CIPHER)
    mine = [e for e in store.help_events("2000") if e.event == "not_helpful"]
    assert mine and "13812345678" not in mine[-1].comment and mine[-1].session_id == SESSION["X-Help-Session"]
    assert client.post("/v1/public/feedback", json={"article_id": "shipping-delay", "helpful": True}).status_code == 404
    assert client.post("/v1/public/feedback", json={"article_id": "refund-timing", "helpful": "yes"}).status_code == 422
    assert client.post("/v1/public/feedback", json={"article_id": "refund-timing", "helpful": True, "comment": "x" * 501}).status_code == 422


def test_long_queries_are_422_with_their_own_code(client):
    r = client.get("/v1/public/search", params={"q": "退" * 101})
    assert r.status_code == 422 and r.json()["error"]["code"] == "query_too_long"
    assert client.get("/v1/public/search", params={"q": "退" * 100}).status_code == 200


def test_contact_is_counted_then_redirects_to_the_configured_page(built):
    with _client(built, public_contact_url="https://shop.example.com/chat") as c:
        r = c.get("/help/contact", params={"session": "tab-contact-0001"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "https://shop.example.com/chat"
    events = FeedbackStore(built / "feedback.db", TEST_CIPHER).help_events("2000")
    assert any(e.event == "contact" and e.session_id == "tab-contact-0001" for e in events)


def test_cors_only_for_configured_shop_origins(client):
    ok = client.get("/v1/public/categories", headers={"Origin": "https://shop.example.com"})
    assert ok.headers["access-control-allow-origin"] == "https://shop.example.com" and "Origin" in ok.headers["vary"]
    other = client.get("/v1/public/categories", headers={"Origin": "https://evil.example"})
    assert other.status_code == 200 and "access-control-allow-origin" not in other.headers
    pre = client.options("/v1/public/search", headers={"Origin": "https://shop.example.com", "Access-Control-Request-Method": "GET"})
    assert pre.status_code == 204 and "X-Help-Session" in pre.headers["access-control-allow-headers"]
    assert client.options("/v1/public/search", headers={"Origin": "https://evil.example"}).status_code == 403
    # the agent API never answers CORS
    assert "access-control-allow-origin" not in client.get("/healthz", headers={"Origin": "https://shop.example.com"}).headers


def test_the_rate_limit_is_per_address_with_retry_after(built):
    with _client(built, public_rate=0.5, public_burst=3, public_trusted_proxies="10.0.0.0/8") as c:
        def get(ip):
            return TestClient(c.app, client=("10.0.0.1", 5000)).get("/v1/public/categories", headers={"X-Forwarded-For": ip})
        assert [get("203.0.113.5").status_code for _ in range(3)] == [200, 200, 200]
        limited = get("203.0.113.5")
        assert limited.status_code == 429 and limited.json()["error"]["code"] == "rate_limited"
        assert limited.headers["retry-after"] == "2"  # one token back at 0.5 / s
        assert get("198.51.100.7").status_code == 200  # another customer is not affected
        assert "assist_help_rate_limited_total 1.0" in c.get("/metrics").text
        assert c.get("/healthz").status_code == 200  # only public paths are limited


def test_x_forwarded_for_is_honoured_only_from_trusted_proxies():
    trusted = parse_networks("10.0.0.0/8, 192.168.1.1")
    scope = lambda peer, xff: {"client": (peer, 1), "headers": [(b"x-forwarded-for", xff.encode())]}
    assert client_address(scope("203.0.113.9", "1.2.3.4"), trusted) == "203.0.113.9"  # not a proxy: its header is a lie
    assert client_address(scope("10.1.1.1", "1.2.3.4, 198.51.100.2"), trusted) == "198.51.100.2"
    assert client_address(scope("10.1.1.1", "1.2.3.4, 198.51.100.2, 192.168.1.1"), trusted) == "198.51.100.2"
    assert client_address(scope("10.1.1.1", "garbage"), trusted) == "10.1.1.1"
    assert client_address(scope("10.1.1.1", "1.2.3.4"), ()) == "10.1.1.1"
    with pytest.raises(Exception, match="not an address"):
        parse_networks("10.0.0.0/8, proxy.local")


def test_token_bucket_refills_at_its_rate_and_forgets_idle_keys():
    now = [0.0]
    bucket = TokenBucket(rate=2, burst=2, max_keys=2, clock=lambda: now[0])
    assert [bucket.take("a"), bucket.take("a")] == [0, 0] and bucket.take("a") == pytest.approx(0.5)
    now[0] = 0.5
    assert bucket.take("a") == 0
    bucket.take("b"), bucket.take("c")  # "a" is the least recently used: dropped (it would be full again)
    assert len(bucket._buckets) == 2


def test_switched_off_the_help_centre_is_404(built):
    with _client(built, public_enabled=False) as c:
        assert c.get("/v1/public/categories").status_code == 404 and c.get("/help").status_code == 404


# --- the sample KB, whole: nothing internal or draft ever reaches a customer ------------------------


@pytest.fixture(scope="module")
def sample(tmp_path_factory, embedder):
    tmp = tmp_path_factory.mktemp("public-sample")
    build_index(REPO / "kb", tmp / "idx", embedder)
    with _client(tmp, public_rate=1000, public_burst=1000) as c:
        yield c, load_kb(REPO / "kb")


def _internal_sections(kb):
    for a in kb.articles:
        if a.status == "published" and a.audience == "public":
            yield from (s for s in split_sections(a.title, a.body) if s.internal)


def test_sample_kb_public_endpoints_never_return_internal_or_draft_items(sample):
    client, kb = sample
    visible = {a.id for a in kb.articles if a.status == "published" and a.audience == "public"}
    hidden = {a.id for a in kb.articles} - visible | {t.id for t in kb.templates}
    assert len(visible) >= 60 and len(hidden) >= 10
    secrets = [s.text for s in _internal_sections(kb)]
    assert secrets, "the sample KB marks some sections internal"
    for a in kb.articles:
        r = client.get(f"/v1/public/articles/{a.id}")
        assert r.status_code == (200 if a.id in visible else 404), a.id
        if r.status_code == 200:
            assert not any(s[:40] in r.json()["html"] for s in secrets), a.id
    for t in kb.templates:
        assert client.get(f"/v1/public/articles/{t.id}").status_code == 404
    # every title, FAQ question and internal section of the KB as a search: only visible ids come back
    queries = [a.title for a in kb.articles] + [q for a in kb.articles for q in a.questions] + [s[:60] for s in secrets]
    queries += [t.title for t in kb.templates]
    for q in queries:
        body = client.get("/v1/public/search", params={"q": q[:100]}).json()
        ids = {h["id"] for h in body["results"]}
        assert ids <= visible, (q, ids - visible)
        assert not any("](" in h["snippet"] for h in body["results"]), q  # images read as their alt text
        text = json.dumps(body["results"], ensure_ascii=False)  # (the query itself is echoed back)
        assert not any(s[:40] in text for s in secrets), q
    categories = client.get("/v1/public/categories").json()["categories"]
    assert sum(c["count"] for c in categories) == len(visible)
    for c in categories:
        assert {h["id"] for h in client.get("/v1/public/search", params={"category": c["name"], "limit": 50}).json()["results"]} <= visible


# --- kb check --------------------------------------------------------------------------------------


def test_kb_check_reports_misplaced_markers_bad_images_and_all_internal_public_articles(kb_copy):
    article = kb_copy / "articles" / "refund" / "return-policy.md"
    text = article.read_text(encoding="utf-8")
    text = text.replace("签收之日起 7 天内", "<!-- internal --> 签收之日起 7 天内")
    text += ("\n![](../../assets/return-steps.png)\n![远程图](https://cdn.example.com/x.png)\n![缺失](../../assets/missing.png)\n"
             "![外面](../../intents.yaml)\n")
    article.write_text(text, encoding="utf-8")
    big = kb_copy / "assets" / "big.png"
    big.write_bytes(b"\x89PNG" + b"0" * 400_000)
    faq = kb_copy / "faq" / "faq-invoice-download.yaml"
    faq.write_text(faq.read_text(encoding="utf-8").replace("  订单完成后", "  ![大图](../assets/big.png)\n  订单完成后"), encoding="utf-8")
    pw = kb_copy / "articles" / "account" / "password-reset.md"
    body = pw.read_text(encoding="utf-8").split("---\n", 2)
    pw.write_text(f"---\n{body[1]}---\n# 重置密码 <!-- internal -->\n\n只有内部内容。\n", encoding="utf-8")
    _, problems = check_kb(kb_copy)
    messages = [f"{p.path.name}:{p.message}" for p in problems]
    expected = ["return-policy.md:'<!-- internal -->' belongs at the end of a heading line",
                "return-policy.md:image '../../assets/return-steps.png' needs alt text",
                "return-policy.md:image 'https://cdn.example.com/x.png' is not a KB file",
                "return-policy.md:image '../../assets/missing.png' not found",
                "return-policy.md:image '../../intents.yaml' is outside assets/",
                "faq-invoice-download.yaml:image '../assets/big.png' is 400 KB; at most 300 KB",
                "password-reset.md:every section of this public article is marked internal"]
    for e in expected:
        assert any(m.startswith(e) for m in messages), (e, messages)


def test_public_body_hides_an_internal_heading_and_its_subsections_only():
    from assist.kb import Article

    body = "# T\n引言\n## 甲 <!-- internal -->\n甲内容\n### 甲一\n甲一内容\n## 乙\n乙内容\n```\n## 代码 <!-- internal -->\n```\n"
    a = Article("x", "T", "c", (), (), "published", "", body, "articles/x.md", 1, audience="public")
    shown = public_body(a)
    assert "引言" in shown and "乙内容" in shown and "甲" not in shown and shown.count("## 代码") == 1
    sections = split_sections("T", body)
    assert [s.heading_path[-1] for s in sections if s.internal] == ["甲", "甲一"]


# --- deflection ------------------------------------------------------------------------------------


def _events():
    t = "2026-11-30T10:00:00.000+00:00"
    return [
        HelpEvent("search", "s1", "退", abstained=True, created_at=t), HelpEvent("search", "s1", "退款多久", abstained=False, created_at=t),
        HelpEvent("view", "s1", article_id="refund-timing", created_at=t), HelpEvent("helpful", "s1", article_id="refund-timing", created_at=t),
        HelpEvent("search", "s2", "开发票抬头错了", abstained=True, created_at=t), HelpEvent("contact", "s2", created_at=t),
        HelpEvent("search", "s3", "开发票抬头错了！", abstained=True, created_at="2026-12-01T09:00:00+00:00"),
        HelpEvent("view", "s3", article_id="invoice-types", created_at="2026-12-01T09:00:00+00:00"),
        HelpEvent("view", "s4", article_id="refund-timing", created_at="2026-12-01T09:00:00+00:00"),
        HelpEvent("contact", "s4", created_at="2026-12-01T09:01:00+00:00"),
    ]


def test_deflection_counts_sessions_that_viewed_and_did_not_need_an_agent():
    since, until = datetime(2026, 11, 24, tzinfo=timezone.utc), datetime(2026, 12, 2, tzinfo=timezone.utc)
    report = help_report(_events(), since, until)
    t = report["totals"]
    # s1 viewed + helpful, s3 viewed + no contact: deflected. s2 never viewed, s4 viewed then contacted: not.
    assert (t["sessions"], t["deflected"], t["deflection_rate"]) == (4, 2, 0.5)
    assert report["days"] == [{"day": "2026-11-30", "sessions": 2, "deflected": 1, "deflection_rate": 0.5},
                              {"day": "2026-12-01", "sessions": 2, "deflected": 1, "deflection_rate": 0.5}]
    # "退" was typed on the way to 退款多久: not an unanswered search; the two invoice phrasings are one
    assert report["unanswered"] == [{"query": "开发票抬头错了", "sessions": 2, "searches": 2, "last_seen": "2026-12-01T09:00:00+00:00"}]
    assert report["articles"][0] == {"id": "refund-timing", "views": 2, "helpful": 1, "not_helpful": 0, "contact": 0}


def test_help_report_command_writes_json_and_html(tmp_path, store_key_env):
    store = FeedbackStore(tmp_path / "fb.db", TEST_CIPHER)
    now = datetime.now(timezone.utc)
    for e in _events():
        store.add_help(HelpEvent(e.event, e.session_id, e.query, e.article_id, e.abstained, e.comment, now.isoformat()))
    store.add_help(HelpEvent("view", "old", article_id="x", created_at=(now - timedelta(days=30)).isoformat()))
    store.close()
    result = CliRunner().invoke(cli, ["help", "report", "--since", "7d", "--db", str(tmp_path / "fb.db"), "--out", str(tmp_path / "rep")])
    assert result.exit_code == 0, result.output
    assert "deflection rate 50.0% of 4 sessions" in result.output
    report = json.loads((tmp_path / "rep" / "report.json").read_text(encoding="utf-8"))
    assert report["totals"]["sessions"] == 4  # the 30-day-old session is outside --since 7d
    html = (tmp_path / "rep" / "report.html").read_text(encoding="utf-8")
    assert "<svg" in html and "开发票抬头错了" in html and "<script" not in html
    bad = CliRunner().invoke(cli, ["help", "report", "--since", "last week", "--db", str(tmp_path / "fb.db"), "--out", str(tmp_path / "x")])
    assert bad.exit_code == 1 and "7d" in bad.output and "Traceback" not in bad.output


def test_parse_since_reads_spans_and_dates():
    now = datetime(2026, 12, 2, tzinfo=timezone.utc)
    assert parse_since("7d", now) == datetime(2026, 11, 25, tzinfo=timezone.utc)
    assert parse_since("2026-11-01", now) == datetime(2026, 11, 1, tzinfo=timezone.utc)


def test_metrics_show_searches_and_the_deflection_ratio(built):
    with _client(built, public_rate=1000, public_burst=1000) as c:
        c.get("/v1/public/search", params={"q": "退款多久到账"}, headers={"X-Help-Session": "tab-metrics-0001"})
        c.get("/v1/public/articles/refund-timing", headers={"X-Help-Session": "tab-metrics-0001"})
        text = c.get("/metrics").text
    assert 'assist_help_searches_total{result="answered"} 1.0' in text
    ratio = float(re.search(r"^assist_help_deflection_ratio (\S+)$", text, re.M).group(1))
    assert 0 < ratio <= 1


def test_a_search_lists_answers_near_the_best_not_everything_sharing_a_word(built):
    with _client(built, public_rate=1000, public_burst=1000) as c:
        near = c.get("/v1/public/search", params={"q": "退款到账要多久"}).json()["results"]
    with _client(built, public_rate=1000, public_burst=1000, public_result_margin=10.0) as c:
        everything = c.get("/v1/public/search", params={"q": "退款到账要多久"}).json()["results"]
    assert near[0]["id"] == "refund-timing" and "password-reset" not in {h["id"] for h in near}
    assert "password-reset" in {h["id"] for h in everything}
