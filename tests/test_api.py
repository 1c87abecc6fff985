"""The HTTP API through TestClient: endpoints, auth, limits, error shape, feedback redaction, reload."""

import asyncio
import json
import re
import shutil
import sqlite3
import time
from datetime import datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.main import STATIC, create_app
from assist.cli import app as cli
from assist.config import Settings, get_settings
from assist.crypto import Cipher
from assist.errors import AssistError
from assist.index.store import CURRENT, build_index
from tests.conftest import CHUNKING, STORE_KEY, TINY_KB

KEY, ADMIN = "agent-key-0123456789", "admin-token-0123456789"
AGENT = {"X-API-Key": KEY}
BOSS = {"Authorization": f"Bearer {ADMIN}"}
# The hashing fake gives lower cosines than a real model (see test_suggest.py).
FAKE_SUGGEST = {"abstain_min_dense": 0.15, "abstain_min_dense_oos": 0.3}
REFUND = {"conversation": [{"role": "customer", "text": "订单 DD202611230001 退款到账要多久？银行卡"}], "customer": {"name": "李先生"}}


def make_settings(tmp, **overrides) -> Settings:
    values = {
        "index_dir": tmp / "idx", "feedback_db": tmp / "feedback.db", "embedding": {"backend": "hashing"},
        "suggest": FAKE_SUGGEST, "api_keys": f"other-key-abcdefghij, {KEY}", "admin_token": ADMIN, "store_key": STORE_KEY,
        "dev_mode": False, "max_body_bytes": 65536, "max_turns": 50, "max_turn_chars": 2000,  # not from the env
    }
    return Settings(**{**values, **overrides})


@pytest.fixture(scope="module")
def built(tmp_path_factory, embedder):
    tmp = tmp_path_factory.mktemp("api")
    result = build_index(TINY_KB, tmp / "idx", embedder, chunking=CHUNKING)
    return tmp, result.version


@pytest.fixture(scope="module")
def client(built):
    tmp, _ = built
    with TestClient(create_app(make_settings(tmp))) as c:  # server exceptions would raise here: none may escape
        yield c


def error_of(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"} and {"code", "message"} <= set(body["error"])
    assert "Traceback" not in response.text
    return body["error"]


# --- endpoints -------------------------------------------------------------------------------------


def test_suggest_returns_intent_answers_and_filled_templates(client, built):
    r = client.post("/v1/suggest", json=REFUND, headers=AGENT)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["intent"]["name"] == "refund_status"
    assert body["answers"][0]["article_id"] == "refund-timing"
    assert body["templates"][0]["template_id"] == "tpl-refund-timing"
    assert "李先生" in body["templates"][0]["text"] and "DD202611230001" in body["templates"][0]["text"]
    assert body["index_version"] == built[1] and body["abstained"] is False
    assert body["timings_ms"]["total"] > 0




def test_the_pipeline_on_the_event_loop_answers_the_same(client, built):
    """ASSIST_SUGGEST_THREADS=-1 runs the pipeline without a thread hop; the answer does not change."""
    tmp, _ = built
    threaded = client.post("/v1/suggest", json=REFUND, headers=AGENT).json()
    with TestClient(create_app(make_settings(tmp, suggest_threads=-1))) as inline:
        assert inline.app.state.placement.executor is None
        body = inline.post("/v1/suggest", json=REFUND, headers=AGENT).json()
    drop = ("timings_ms", "request_id")
    assert {k: v for k, v in body.items() if k not in drop} == {k: v for k, v in threaded.items() if k not in drop}

def test_a_lone_request_runs_on_the_event_loop_and_requests_with_company_in_the_pipeline_threads(built, monkeypatch):
    """With threads (the default) a request alone on the worker saves the thread hops; once requests come
    together (a burst that queued behind an inline one), the next ones go to the pipeline's threads, where
    their model passes can overlap."""
    import threading

    import httpx

    import api.routes.suggest as route

    tmp, _ = built
    ran_on, real = [], route._suggest

    def recorded(*args):
        ran_on.append(threading.current_thread().name)
        return real(*args)

    monkeypatch.setattr(route, "_suggest", recorded)
    with TestClient(create_app(make_settings(tmp))) as c:
        loop_thread = c.portal.call(lambda: threading.current_thread().name)

        async def send(n: int) -> list[int]:
            transport = httpx.ASGITransport(app=c.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test", headers=AGENT) as ac:
                rs = await asyncio.gather(*(ac.post("/v1/suggest", json=REFUND) for _ in range(n)))
            return [r.status_code for r in rs]

        assert c.portal.call(send, 1) == [200]
        assert ran_on == [loop_thread]
        assert c.portal.call(send, 3) == [200, 200, 200]  # a burst: seen once the loop is free again
        ran_on.clear()
        assert c.portal.call(send, 3) == [200, 200, 200]
        assert len(ran_on) == 3 and all(name.startswith("assist-suggest") for name in ran_on), ran_on
        assert c.app.state.placement.busy == 0


def test_a_request_that_came_while_the_loop_ran_one_inline_sends_the_next_ones_to_the_threads():
    """A request that waited while the loop ran another one inline is company too: for the window after,
    lone requests go to the threads; once the window has passed with no company, they run inline again."""
    from api.routes.suggest import Placement

    async def scenario() -> list[bool]:
        p = Placement(2, window=0.2)
        try:
            p.enter()
            seen = [p.inline()]  # alone: inline
            p.ran_inline()
            p.leave()
            await asyncio.sleep(0)  # the loop reads its sockets: one came while it was busy
            p.enter()
            p.leave()
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            p.enter()
            seen.append(p.inline())
            p.leave()
            await asyncio.sleep(0.25)
            p.enter()
            seen.append(p.inline())
            p.leave()
            return seen
        finally:
            p.shutdown()

    assert asyncio.run(scenario()) == [True, False, True]


def test_a_valid_suggest_skips_the_framework_and_an_invalid_one_gets_its_errors(client, monkeypatch):
    """api.fastpath answers valid requests itself; no key, a wrong key, a bad body or a limit get the route's errors."""
    import api.fastpath

    taken = []
    real = api.fastpath.run_suggest

    async def counted(body, state):
        taken.append(body)
        return await real(body, state)

    monkeypatch.setattr(api.fastpath, "run_suggest", counted)
    fast = client.post("/v1/suggest", json=REFUND, headers=AGENT)
    assert fast.status_code == 200 and len(taken) == 1
    assert fast.json()["answers"][0]["article_id"] == "refund-timing"
    assert error_of(client.post("/v1/suggest", json=REFUND), 401)["message"].startswith("missing API key")
    assert error_of(client.post("/v1/suggest", json=REFUND, headers={"X-API-Key": "nope-nope-nope"}), 401)["message"] == "invalid API key"
    bad = error_of(client.post("/v1/suggest", json={"conversation": [], "top_k": "x"}, headers=AGENT), 422)
    assert bad["code"] == "invalid_request" and {d["field"] for d in bad["details"]} >= {"top_k"}
    assert error_of(client.post("/v1/suggest", content=b"{", headers={**AGENT, "Content-Type": "application/json"}), 422)["code"] == "invalid_json"
    long = {"conversation": [{"role": "customer", "text": "退" * 2001}]}  # over max_turn_chars: the fast path's own check
    assert error_of(client.post("/v1/suggest", json=long, headers=AGENT), 422)["code"] == "turn_too_long"
    assert len(taken) == 2  # the limit was checked inside run_suggest, on the fast path; the others went to the route
    metrics = client.get("/metrics").text
    assert 'assist_http_requests_total{method="POST",route="/v1/suggest",status="200"}' in metrics
    assert "unmatched" not in metrics

def test_suggest_routes_and_hands_off_an_escalating_customer(client):
    calm = client.post("/v1/suggest", json=REFUND, headers=AGENT).json()
    assert calm["route"] == {"queue": "after_sales", "priority": 2, "reason": "意图：退款进度", "transfer": False}
    assert calm["handoff"] is None
    angry = {"conversation": [{"role": "customer", "text": "还没到账！！我要投诉，再不退钱就打12315，电话13812345678"}],
             "customer": {"tier": "vip"}}
    body = client.post("/v1/suggest", json=angry, headers=AGENT).json()
    assert body["route"]["queue"] == "supervisor" and body["route"]["priority"] == 1 and body["route"]["transfer"]
    assert "VIP 客户" in body["route"]["reason"]
    note = body["handoff"]["note"]
    assert note.startswith("【转接】supervisor") and "13812345678" not in note and "[手机号]" in note


def test_suggest_clarifies_when_two_intents_are_close(built):
    tmp, _ = built
    ask = {"conversation": [{"role": "customer", "text": "我的钱和包裹都没消息"}]}
    with TestClient(create_app(make_settings(tmp, suggest={**FAKE_SUGGEST, "clarify_margin": 0.5}))) as wide:
        body = wide.post("/v1/suggest", json=ask, headers=AGENT).json()
        assert body["clarify"]["options"][0] == {"intent": "shipping_delay", "label": "物流延迟"}
        assert {o["intent"] for o in body["clarify"]["options"]} >= {"shipping_delay", "refund_status"}
        assert "「物流延迟」还是「退款进度」" in body["clarify"]["question"]
        assert wide.post("/v1/suggest", json=REFUND, headers=AGENT).json()["clarify"] is None  # a clear request
    with TestClient(create_app(make_settings(tmp, suggest={**FAKE_SUGGEST, "clarify_below": 1.0}))) as always:
        body = always.post("/v1/suggest", json=REFUND, headers=AGENT).json()
        assert body["clarify"]["question"] == "请问您的退货已经寄回并被仓库签收了吗？"  # declared in intents.yaml


def test_top_k_limits_the_answers(client):
    r = client.post("/v1/suggest", json={**REFUND, "top_k": 1}, headers=AGENT)
    assert r.status_code == 200 and len(r.json()["answers"]) == 1


def test_article_template_and_intents(client, built):
    a = client.get("/v1/articles/refund-timing", headers=AGENT)
    assert a.status_code == 200
    assert a.json()["title"] == "退款到账时间" and "## 银行卡" in a.json()["body"] and a.json()["index_version"] == built[1]
    t = client.get("/v1/templates/tpl-refund-timing", headers=AGENT).json()
    assert t["intents"] == ["refund_status"] and "{{ order_id }}" in t["body"]
    assert {v["name"] for v in t["variables"]} == {"customer_name", "order_id"}
    intents = client.get("/v1/intents", headers=AGENT).json()
    names = {i["name"]: i for i in intents["intents"]}
    assert {"refund_status", "shipping_delay", "complaint"} <= set(names) and names["complaint"]["escalate"] is True
    assert names["refund_status"]["route"] == "after_sales" and names["refund_status"]["clarify"].startswith("请问")
    assert error_of(client.get("/v1/articles/no-such", headers=AGENT), 404)["code"] == "not_found"
    assert error_of(client.get("/v1/templates/no-such", headers=AGENT), 404)["code"] == "not_found"
    # a draft is not served
    assert client.get("/v1/articles/draft-notice", headers=AGENT).status_code == 404


def test_probes_and_unknown_routes(client, built):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready.pop("status") == "ready" and ready.pop("index_version") == built[1]
    since = datetime.fromisoformat(ready.pop("serving_since"))  # when this process swapped the version in
    assert not ready and timedelta(0) <= datetime.now(timezone.utc) - since < timedelta(minutes=30)
    assert error_of(client.get("/v1/nope", headers=AGENT), 404)["code"] == "not_found"
    e = client.delete("/v1/suggest", headers=AGENT)
    assert error_of(e, 405)["code"] == "method_not_allowed" and "POST" in e.headers["allow"]
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.text == (STATIC / "index.html").read_text(encoding="utf-8")  # the sidebar, not the placeholder
    assert '<script type="module"' in page.text
    script = client.get("/static/js/app.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]


def test_api_docs_load_nothing_from_other_hosts(client):
    for page in ("/docs", "/redoc"):
        r = client.get(page)
        assert r.status_code == 200 and "/openapi.json" in r.text
        assets = re.findall(r'(?:src|href)="([^"]+)"', r.text)
        assert assets and all(a.startswith("/docs-assets/") for a in assets), assets
        for asset in assets:
            assert client.get(asset).status_code == 200, asset
        assert "cdn." not in r.text and "fonts.googleapis" not in r.text


def test_without_the_sidebar_files_the_root_says_the_api_is_up(built, monkeypatch, tmp_path):
    import api.main

    monkeypatch.setattr(api.main, "STATIC", tmp_path / "no-static")
    with TestClient(create_app(make_settings(built[0]))) as c:
        page = c.get("/")
        assert page.status_code == 200 and "assist API 已启动" in page.text and "/docs" in page.text
        assert c.get("/static/js/app.js").status_code == 404


def test_metrics_count_requests_latency_intents_and_version(client, built):
    client.post("/v1/suggest", json=REFUND, headers=AGENT)
    client.post("/v1/suggest", json={"conversation": [{"role": "customer", "text": "我要投诉你们！！再不处理我就打12315"}]}, headers=AGENT)
    client.post("/v1/suggest", json={"conversation": []}, headers=AGENT)
    client.post("/v1/suggest", content=b"{" + b" " * 70000 + b"}", headers={**AGENT, "content-type": "application/json"})
    text = client.get("/metrics").text
    assert 'assist_http_requests_total{method="POST",route="/v1/suggest",status="413"}' in text
    assert 'assist_http_requests_total{method="POST",route="/v1/suggest",status="200"}' in text
    assert 'assist_http_requests_total{method="POST",route="/v1/suggest",status="422"}' in text
    assert 'assist_suggest_latency_seconds_bucket{le="0.005"}' in text
    assert 'assist_intents_detected_total{intent="refund_status"}' in text
    assert "assist_escalations_total 1.0" in text or "assist_escalations_total 2.0" in text
    assert f'assist_index_info{{version="{built[1]}"}} 1.0' in text


def test_openapi_documents_the_configured_limits_and_error_shape(client):
    doc = client.get("/openapi.json").json()
    schemas = doc["components"]["schemas"]
    conv = schemas["SuggestRequest"]["properties"]["conversation"]
    assert conv["maxItems"] == 50 and conv["minItems"] == 1
    assert schemas["Turn"]["properties"]["text"]["maxLength"] == 2000
    assert "x-limit" not in json.dumps(doc)
    suggest = doc["paths"]["/v1/suggest"]["post"]
    for status in ("401", "413", "415", "422", "503"):
        assert suggest["responses"][status]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse")
    assert suggest["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/SuggestRequest")
    assert schemas["SuggestRequest"]["examples"][0]["conversation"][0]["text"].startswith("你好")


# --- auth ------------------------------------------------------------------------------------------


def test_agent_endpoints_need_a_valid_api_key(client):
    e = error_of(client.post("/v1/suggest", json=REFUND), 401)
    assert e["code"] == "unauthorized" and "X-API-Key" in e["message"]
    assert error_of(client.post("/v1/suggest", json=REFUND, headers={"X-API-Key": "wrong"}), 401)["message"] == "invalid API key"
    assert error_of(client.get("/v1/intents", headers=BOSS), 401)["code"] == "unauthorized"  # the admin token is not an API key
    assert client.post("/v1/suggest", json=REFUND, headers={"X-API-Key": "other-key-abcdefghij"}).status_code == 200
    # credentials are checked before the body
    assert error_of(client.post("/v1/suggest", json={"conversation": []}), 401)["code"] == "unauthorized"


def test_admin_endpoints_need_the_admin_token(client):
    assert error_of(client.post("/v1/admin/reload"), 401)["code"] == "unauthorized"
    assert error_of(client.post("/v1/admin/reload", headers={"Authorization": "Bearer nope"}), 401)["message"] == "invalid admin token"
    assert error_of(client.post("/v1/admin/reload", headers=AGENT), 403)["code"] == "forbidden"
    assert error_of(client.get("/v1/feedback/export", headers=AGENT), 403)["code"] == "forbidden"
    r = client.post("/v1/admin/reload", headers=BOSS)
    assert r.status_code == 200 and r.json()["changed"] is False


def test_probes_and_metrics_stay_open(client):
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json"):
        assert client.get(path).status_code == 200


def test_no_keys_and_no_dev_mode_refuses_to_start(tmp_path, monkeypatch):
    with pytest.raises(AssistError, match="no API keys configured"):
        create_app(make_settings(tmp_path, api_keys=""))
    with pytest.raises(AssistError, match="development key"):
        create_app(make_settings(tmp_path, api_keys="dev-key"))
    monkeypatch.delenv("ASSIST_API_KEYS", raising=False)
    monkeypatch.delenv("ASSIST_DEV_MODE", raising=False)
    monkeypatch.setenv("ASSIST_INDEX_DIR", str(tmp_path / "idx"))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli, ["serve", "--port", "1"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 1 and "no API keys configured" in result.output and "Traceback" not in result.output


def test_dev_mode_accepts_the_fixed_dev_secrets_only_then(built):
    tmp, _ = built
    with TestClient(create_app(make_settings(tmp, api_keys="", admin_token="", dev_mode=True))) as dev:
        assert dev.get("/v1/intents", headers={"X-API-Key": "dev-key"}).status_code == 200
        assert dev.post("/v1/admin/reload", headers={"Authorization": "Bearer dev-admin"}).status_code == 200
    with TestClient(create_app(make_settings(tmp))) as prod:
        assert prod.get("/v1/intents", headers={"X-API-Key": "dev-key"}).status_code == 401
        assert prod.post("/v1/admin/reload", headers={"Authorization": "Bearer dev-admin"}).status_code == 401


# --- bad input -------------------------------------------------------------------------------------


def turns(n: int, text: str = "退款多久到账") -> list[dict]:
    return [{"role": "customer", "text": text} for _ in range(n)]


@pytest.mark.parametrize(
    "body,code",
    [
        ({"conversation": []}, "invalid_request"),
        ({}, "invalid_request"),
        ({"conversation": turns(51)}, "too_many_turns"),
        ({"conversation": turns(1, "退" * 2001)}, "turn_too_long"),
        ({"conversation": [{"role": "robot", "text": "hi"}]}, "invalid_request"),
        ({"conversation": [{"role": "customer"}]}, "invalid_request"),
        ({"conversation": [{"role": "customer", "text": 12}]}, "invalid_request"),
        ({"conversation": "退款"}, "invalid_request"),
        ({**REFUND, "top_k": 10**30}, "invalid_request"),
        ({**REFUND, "top_k": 0}, "invalid_request"),
        ({**REFUND, "top_k": "3"}, "invalid_request"),
        ({**REFUND, "top_k": 2.5}, "invalid_request"),
        ({**REFUND, "customer": {"name": "x" * 201}}, "invalid_request"),
        ({**REFUND, "customer": {"points": 10**30}}, "invalid_request"),
        ({**REFUND, "customer": {"tags": ["a"]}}, "invalid_request"),
        ([REFUND], "invalid_request"),
    ],
)
def test_bad_suggest_bodies_are_422_with_a_code(client, body, code):
    e = error_of(client.post("/v1/suggest", json=body, headers=AGENT), 422)
    assert e["code"] == code and e["message"]


def test_the_limits_sit_exactly_at_the_setting(client):
    assert client.post("/v1/suggest", json={"conversation": turns(50)}, headers=AGENT).status_code == 200
    assert client.post("/v1/suggest", json={"conversation": turns(1, "退" * 2000)}, headers=AGENT).status_code == 200


def test_limits_endpoint_publishes_the_configured_limits(built):
    tmp, _ = built
    with TestClient(create_app(make_settings(tmp, max_turns=20, max_turn_chars=300))) as c:
        assert c.get("/v1/limits").status_code == 401
        limits = c.get("/v1/limits", headers=AGENT).json()
        assert limits == {"max_turns": 20, "max_turn_chars": 300, "max_body_bytes": 65536, "max_top_k": 20, "default_top_k": 3}
        over = {"conversation": [{"role": "customer", "text": "退款"}] * (limits["max_turns"] + 1)}
        assert error_of(c.post("/v1/suggest", json=over, headers=AGENT), 422)["code"] == "too_many_turns"
        at = {"conversation": [{"role": "customer", "text": "退款"}] * limits["max_turns"]}
        assert c.post("/v1/suggest", json=at, headers=AGENT).status_code == 200


def test_customer_null_is_no_customer_and_customer_errors_read_plainly(client):
    assert client.post("/v1/suggest", json={**REFUND, "customer": None}, headers=AGENT).status_code == 200
    long = error_of(client.post("/v1/suggest", json={**REFUND, "customer": {"note": "x" * 201}}, headers=AGENT), 422)
    assert long["message"] == "customer.note: at most 200 characters, got 201"
    nested = error_of(client.post("/v1/suggest", json={**REFUND, "customer": {"tags": ["vip"]}}, headers=AGENT), 422)
    assert nested["message"] == "customer.tags: must be text, a number, true / false or null"
    for body in (long, nested):
        assert "function" not in json.dumps(body) and "0x" not in json.dumps(body)
    ok = {"name": "李先生", "tier": "VIP", "points": 1200, "ratio": 0.5, "verified": True, "note": None}
    assert client.post("/v1/suggest", json={**REFUND, "customer": ok}, headers=AGENT).status_code == 200


def test_field_errors_name_the_field_without_echoing_input(client):
    e = error_of(client.post("/v1/suggest", json={"conversation": [{"role": "robot", "text": "13812345678"}]}, headers=AGENT), 422)
    assert e["details"][0]["field"] == "conversation.0.role"
    assert "13812345678" not in json.dumps(e)


def test_raw_bodies_that_are_not_clean_json(client):
    def post(content: bytes, ctype: str = "application/json"):
        return client.post("/v1/suggest", content=content, headers={**AGENT, "content-type": ctype})

    assert error_of(post(b'{"conversation": [{"role": "customer", "text": "\xff\xfe"}]}'), 422)["code"] == "invalid_utf8"
    assert error_of(post(b'{"conversation": '), 422)["code"] == "invalid_json"
    assert error_of(post(b'{"conversation": [{"role": "customer", "text": "\\ud800"}]}'), 422)["code"] == "invalid_request"
    assert error_of(post(b'{"conversation": [{"role": "customer", "text": "a"}], "top_k": NaN}'), 422)["code"] == "invalid_request"
    assert error_of(post(b'{"conversation": [{"role": "customer", "text": "a"}], "customer": {"x": Infinity}}'), 422)["code"] == "invalid_request"
    assert error_of(post(b"1" * 5000), 400)["code"] == "bad_request"  # past Python's int-string limit
    assert error_of(post(json.dumps(REFUND).encode(), "text/plain"), 415)["code"] == "unsupported_media_type"
    assert error_of(post(b"conversation=hi", "application/x-www-form-urlencoded"), 415)["code"] == "unsupported_media_type"
    assert post(json.dumps(REFUND).encode(), "application/json; charset=utf-8").status_code == 200


def test_big_bodies_are_413_before_parsing(client):
    big = json.dumps({"conversation": turns(40, "退" * 2000)}).encode()
    assert len(big) > 65536
    assert error_of(client.post("/v1/suggest", content=big, headers={**AGENT, "content-type": "application/json"}), 413)["code"] == "body_too_large"

    def chunks():  # no Content-Length: the streamed bytes are counted
        for _ in range(100):
            yield b"x" * 1024

    r = client.post("/v1/suggest", content=chunks(), headers={**AGENT, "content-type": "application/json"})
    assert "content-length" not in r.request.headers
    assert error_of(r, 413)["code"] == "body_too_large"


def test_an_unexpected_error_is_a_json_500_without_internals_logged_redacted(client, monkeypatch, caplog):
    loaded = client.app.state.service.current

    def boom(*args, **kwargs):
        raise RuntimeError("cannot handle 我的手机13812345678")

    monkeypatch.setattr(loaded.suggester, "suggest", boom)
    e = error_of(client.post("/v1/suggest", json=REFUND, headers=AGENT), 500)
    assert e == {"code": "internal_error", "message": "an unexpected error occurred; it has been logged"}
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name == "api.middleware")
    assert "RuntimeError: cannot handle 我的手机[手机号]" in logged and "13812345678" not in logged
    assert 'route="/v1/suggest",status="500"' in client.get("/metrics").text


# --- feedback --------------------------------------------------------------------------------------

PII_TURNS = [
    {"role": "customer", "text": "我的订单 DD202611230001 退款还没到，手机 138-1234-5678"},
    {"role": "agent", "text": "请提供身份证号核实"},
    {"role": "customer", "text": "身份证 110105199003072311，邮箱 li.lei@example.com"},
]


def test_feedback_is_stored_with_personal_data_redacted(client, built):
    tmp, version = built
    r = client.post("/v1/feedback", headers=AGENT, json={
        "event": "edited", "suggestion_id": "tpl-refund-timing", "kind": "template", "intent": "refund_status",
        "index_version": version, "latency_ms": 5400, "session_id": "conv-1", "conversation": PII_TURNS,
        "text": "李先生，订单 DD202611230001 的退款已退回尾号 6222021234567890128 的卡，有问题打 13912345678",
    })
    assert r.status_code == 201, r.text
    stored_id = r.json()["id"]
    with sqlite3.connect(tmp / "feedback.db") as db:
        row = db.execute("SELECT conversation, text, event, kind, latency_ms FROM feedback WHERE id = ?", (stored_id,)).fetchone()
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conversation, text, event, kind, latency = row
    assert conversation.startswith("enc1:") and text.startswith("enc1:")  # encrypted at rest with ASSIST_STORE_KEY
    assert "李先生" not in conversation + text and "退款" not in conversation + text
    cipher = Cipher(STORE_KEY)
    raw = cipher.open(conversation) + cipher.open(text)
    for secret in ("138-1234-5678", "110105199003072311", "li.lei@example.com", "6222021234567890128", "13912345678"):
        assert secret not in raw
    assert "[手机号]" in raw and "[身份证号]" in raw and "[邮箱]" in raw and "[银行卡号]" in raw
    assert raw.count("DD202611230001") == 2  # order numbers stay: they make the case useful
    assert (event, kind, latency) == ("edited", "template", 5400)


def test_feedback_export_reads_events_back(client):
    client.post("/v1/feedback", headers=AGENT, json={"event": "used", "suggestion_id": "refund-timing", "kind": "article",
                                                     "conversation": [{"role": "customer", "text": "退款多久到账，电话13812345678"}]})
    client.post("/v1/feedback", headers=AGENT, json={"event": "dismissed", "suggestion_id": "return-policy", "kind": "article"})
    used = client.get("/v1/feedback/export", params={"event": "used"}, headers=BOSS).json()["events"]
    assert used and all(e["event"] == "used" for e in used)
    assert used[-1]["conversation"] == [{"role": "customer", "text": "退款多久到账，电话[手机号]"}]
    page = client.get("/v1/feedback/export", params={"limit": 1}, headers=BOSS).json()
    assert len(page["events"]) == 1 and page["next_after_id"] == page["events"][0]["id"]
    rest = client.get("/v1/feedback/export", params={"after_id": page["next_after_id"]}, headers=BOSS).json()
    assert all(e["id"] > page["next_after_id"] for e in rest["events"])


@pytest.mark.parametrize(
    "body",
    [
        {"event": "liked", "suggestion_id": "refund-timing", "kind": "article"},
        {"event": "used", "suggestion_id": "refund timing; drop table", "kind": "article"},
        {"event": "used", "suggestion_id": "refund-timing", "kind": "faq"},
        {"event": "used", "suggestion_id": "refund-timing", "kind": "article", "latency_ms": -1},
        {"event": "used", "suggestion_id": "refund-timing", "kind": "article", "latency_ms": False},
        {"event": "used", "suggestion_id": "refund-timing", "kind": "article", "conversation": turns(51)},
    ],
)
def test_bad_feedback_is_422(client, body):
    error_of(client.post("/v1/feedback", json=body, headers=AGENT), 422)


# --- reload ----------------------------------------------------------------------------------------


def test_reload_swaps_to_a_new_version_and_a_broken_one_keeps_the_old(built, embedder, tmp_path):
    src, _ = built
    tmp = tmp_path
    shutil.copytree(src / "idx", tmp / "idx")
    kb = tmp / "kb"
    shutil.copytree(TINY_KB, kb)
    with TestClient(create_app(make_settings(tmp))) as c:
        first = c.get("/readyz").json()["index_version"]
        article = kb / "articles/refund/refund-timing.md"
        article.write_text(article.read_text(encoding="utf-8") + "\n## 节假日\n\n节假日退款顺延到账。\n", encoding="utf-8")
        second = build_index(kb, tmp / "idx", embedder, chunking=CHUNKING).version
        r = c.post("/v1/admin/reload", headers=BOSS)
        assert r.status_code == 200 and r.json()["previous"] == first and r.json()["current"] == second and r.json()["changed"]
        assert c.post("/v1/suggest", json=REFUND, headers=AGENT).json()["index_version"] == second
        assert "节假日" in c.get("/v1/articles/refund-timing", headers=AGENT).json()["body"]

        # a version built for another model: refused, the old one keeps serving
        broken = tmp / "idx" / "broken"
        shutil.copytree(tmp / "idx" / second, broken)
        manifest = json.loads((broken / "manifest.json").read_text())
        manifest["model"]["dim"] = 999
        (broken / "manifest.json").write_text(json.dumps(manifest))
        (tmp / "idx" / CURRENT).write_text("broken\n")
        e = error_of(c.post("/v1/admin/reload", headers=BOSS), 409)
        assert e["code"] == "reload_failed" and f"still serving {second}" in e["message"]
        assert c.get("/readyz").json()["index_version"] == second
        assert c.post("/v1/suggest", json=REFUND, headers=AGENT).status_code == 200
        assert 'assist_index_reloads_total{result="error"} 1.0' in c.get("/metrics").text


def test_a_replica_follows_current_by_itself_and_audits_admin_actions(built, embedder, tmp_path):
    src, _ = built
    shutil.copytree(src / "idx", tmp_path / "idx")
    kb = tmp_path / "kb"
    shutil.copytree(TINY_KB, kb)
    with TestClient(create_app(make_settings(tmp_path, index_poll_seconds=0.2))) as c:
        first = c.get("/readyz").json()["index_version"]
        article = kb / "articles/refund/refund-timing.md"
        article.write_text(article.read_text(encoding="utf-8") + "\n## 节假日\n\n节假日退款顺延到账。\n", encoding="utf-8")
        second = build_index(kb, tmp_path / "idx", embedder, chunking=CHUNKING).version  # another process publishes
        deadline = time.monotonic() + 20
        while c.get("/readyz").json()["index_version"] == first and time.monotonic() < deadline:
            time.sleep(0.1)
        assert c.get("/readyz").json()["index_version"] == second  # no reload call: the poll found it
        assert c.post("/v1/suggest", json=REFUND, headers=AGENT).json()["index_version"] == second

        assert c.get("/v1/feedback/export", headers=BOSS).status_code == 200
        assert c.post("/v1/admin/erase", headers=BOSS, json={"session_id": "conv-x"}).status_code == 200
        entries = c.get("/v1/admin/audit", headers=BOSS).json()["entries"]
        assert [e["action"] for e in entries][:2] == ["erase", "feedback_export"]
        assert entries[0]["actor"].startswith("api ") and ADMIN not in entries[0]["actor"]
        assert c.get("/v1/admin/audit", headers=AGENT).status_code == 403


def test_no_index_means_not_ready_and_503_until_a_build_and_reload(tmp_path, embedder):
    with TestClient(create_app(make_settings(tmp_path))) as c:
        assert c.get("/healthz").status_code == 200
        assert error_of(c.get("/readyz"), 503)["code"] == "not_ready"
        assert error_of(c.post("/v1/suggest", json=REFUND, headers=AGENT), 503)["code"] == "index_not_loaded"
        assert error_of(c.post("/v1/admin/reload", headers=BOSS), 409)["code"] == "reload_failed"
        version = build_index(TINY_KB, tmp_path / "idx", embedder, chunking=CHUNKING).version
        assert c.post("/v1/admin/reload", headers=BOSS).json() == {"previous": None, "current": version, "changed": True,
                                                                    "seconds": pytest.approx(0, abs=30)}
        assert c.get("/readyz").status_code == 200
