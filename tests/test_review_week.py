"""A simulated week on the real model: 2,000 suggestions through the API with agents' feedback, 180 of
them about four topics the sample KB lacks; the review's top five gaps must be those topics. The week's
report.html, as a team lead reads it, is rendered in Chromium to test-artifacts/review/simulated-week-*.png."""

import json
import sys
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from assist.feedback import FeedbackStore
from assist.index.embed import embedder_from_settings
from assist.index.store import build_index
from assist.review import review_period
from assist.reviewpage import render
from tests.conftest import TEST_CIPHER, index_dir_env
from tests.test_review_page import ARTIFACTS
from tests.test_sample_kb import KB, ROOT
from tests.test_sidebar import browser  # noqa: F401  (the Chromium fixture)

sys.path.insert(0, str(ROOT / "bench"))
from simulate_agents import GAPS, Policy, simulate  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def test_a_simulated_week_finds_the_topics_the_kb_lacks(tmp_path, browser):  # noqa: F811
    with index_dir_env(tmp_path / "idx") as s:
        build_index(KB, s.index_dir, embedder_from_settings(s, build=True), chunking=s.chunking, dense=s.dense, intent=s.intent)
        s = s.model_copy(update={"feedback_db": tmp_path / "fb.db", "dev_mode": True, "retention_days": 0})
        with TestClient(create_app(s)) as c:
            c.headers["X-API-Key"] = "dev-key"

            def post(path, body):
                r = c.post(path, json=body)
                return r.status_code, r.json()

            counts = simulate(post, n=2000, seed=7, policy=Policy(shown_events=False))
            assert c.app.state.suggestion_log.flush()
            store = FeedbackStore(s.feedback_db, TEST_CIPHER)
            report = review_period(s, store, "1d", (datetime.now(timezone.utc) + timedelta(seconds=1)).isoformat(),
                                   c.app.state.service.current.index)
    assert counts["suggestions"] == 2000 and counts["gap_questions"] >= 150 and counts["errors"] == 0
    topic = {}
    for line in GAPS.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        topic[row["text"]] = row["topic"]
    topics = set(topic.values())
    top = report["gaps"][:5]
    found = {}
    for g in top:
        share = Counter(topic.get(q, "-") for q in g["queries"])
        name, n = share.most_common(1)[0]
        print(g["id"], g["distinct"], g["volume"], dict(share), g["suggested"]["action"], g["examples"][:2])
        if name in topics and n >= 0.75 * g["distinct"]:
            found[name] = n
    assert set(found) == topics, found  # each missing topic is one of the top five gaps, mostly by itself
    for name, n in found.items():  # and most of the topic's questions the KB served badly are in it
        asked = sum(1 for q, t in topic.items() if t == name)
        assert n >= 0.5 * asked, (name, n, asked)
    assert all(g["suggested"]["action"] == "new_article" for g in top if Counter(topic.get(q, "-") for q in g["queries"]).most_common(1)[0][0] in topics)
    assert report["totals"]["suggestions"] == 2000 and 0.5 < report["totals"]["acceptance_rate"] < 0.9
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    html = ARTIFACTS / "simulated-week-report.html"
    html.write_text(render(report), encoding="utf-8")
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.goto(html.as_uri())
    assert page.get_by_role("heading", name="Knowledge gaps").is_visible()
    page.screenshot(path=str(ARTIFACTS / "simulated-week-1280.png"), clip={"x": 0, "y": 0, "width": 1280, "height": 2400}, full_page=True)
    page.close()
