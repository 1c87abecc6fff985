"""A/B experiments: stable assignment, setting overrides and template variants per arm, the arm everywhere."""

import json
import subprocess
import sys
from collections import Counter

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from assist.errors import AssistError
from assist.experiments import load_experiment
from assist.feedback import FeedbackStore
from assist.index.store import build_index
from tests.conftest import CHUNKING, TEST_CIPHER
from tests.test_api import AGENT, make_settings

EXPERIMENT = {"name": "exp-1", "arms": [{"name": "control"}, {"name": "one-answer", "suggest": {"answers": 1}},
                                        {"name": "short", "templates": {"tpl-refund-timing": "tpl-refund-timing-short"}}]}
REFUND = [{"role": "customer", "text": "退款到账要多久？银行卡"}]


def test_assignment_is_stable_and_follows_the_weights():
    exp = load_experiment(json.dumps({"name": "w", "arms": [{"name": "a"}, {"name": "b", "weight": 3}]}))
    arms = Counter(exp.assign(f"conv-{n}").name for n in range(8000))
    assert abs(arms["b"] / 8000 - 0.75) < 0.02
    again = load_experiment(json.dumps({"name": "w", "arms": [{"name": "a"}, {"name": "b", "weight": 3}]}))
    assert all(exp.assign(f"conv-{n}") == again.assign(f"conv-{n}") for n in range(200))
    assert exp.assign(None) is None and exp.assign("") is None
    # the same in another process (no per-process hash seed)
    code = ("import json; from assist.experiments import load_experiment; e = load_experiment(json.dumps("
            "{'name': 'w', 'arms': [{'name': 'a'}, {'name': 'b', 'weight': 3}]})); print(','.join(e.assign(f'conv-{n}').name for n in range(50)))")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert other == ",".join(exp.assign(f"conv-{n}").name for n in range(50))


@pytest.mark.parametrize("bad, message", [
    ({"name": "x", "arms": [{"name": "a"}]}, "at least two arms"),
    ({"name": "x", "arms": [{"name": "a"}, {"name": "a"}]}, "two arms are called"),
    ({"name": "x", "arms": [{"name": "a"}, {"name": "b", "suggest": {"boost": 1}}]}, "unknown suggest settings (boost)"),
    ({"name": "x", "arms": [{"name": "a"}, {"name": "b", "suggest": {"answers": 0}}]}, "answers"),
    ({"name": "x", "arms": [{"name": "a"}, {"name": "b", "weight": 0}]}, "weight"),
    ({"arms": []}, "needs a 'name'"),
])
def test_a_malformed_experiment_is_refused_with_the_reason(bad, message):
    with pytest.raises(AssistError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_experiment(json.dumps(bad))


def test_an_experiment_file_and_unknown_templates(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("name: f\narms:\n  - name: a\n  - name: b\n    templates: {tpl-x: tpl-y}\n", encoding="utf-8")
    assert [a.name for a in load_experiment(str(path)).arms] == ["a", "b"]
    with pytest.raises(AssistError, match="no template 'tpl-x'"):
        load_experiment(str(path), {"tpl-refund-timing"})
    with pytest.raises(AssistError, match="no file"):
        load_experiment(str(tmp_path / "missing.yaml"))
    with pytest.raises(AssistError, match="ASSIST_EXPERIMENTS"):
        create_app(make_settings(tmp_path, experiments='{"name": "x", "arms": [{"name": "a"}]}'))


@pytest.fixture(scope="module")
def served(tmp_path_factory, embedder):
    import shutil

    from tests.conftest import TINY_KB

    tmp = tmp_path_factory.mktemp("exp")
    kb = tmp / "kb"
    shutil.copytree(TINY_KB, kb)
    base = (kb / "templates" / "tpl-refund-timing.md").read_text(encoding="utf-8")
    (kb / "templates" / "tpl-refund-timing-short.md").write_text(
        base.replace("id: tpl-refund-timing", "id: tpl-refund-timing-short").replace("title: ", "title: 简短版 ", 1), encoding="utf-8")
    build_index(kb, tmp / "idx", embedder, chunking=CHUNKING)
    with TestClient(create_app(make_settings(tmp, experiments=json.dumps(EXPERIMENT), retention_days=0))) as c:
        yield c, tmp


def _session_in(arm: str) -> str:
    exp = load_experiment(json.dumps(EXPERIMENT))
    return next(f"conv-{n}" for n in range(1000) if exp.assign(f"conv-{n}").name == arm)


def test_each_arm_gets_its_settings_and_variants_and_says_so(served):
    c, tmp = served
    out = {}
    for arm in ("control", "one-answer", "short"):
        r = c.post("/v1/suggest", json={"conversation": REFUND, "session_id": _session_in(arm)}, headers=AGENT).json()
        assert r["arm"] == arm
        out[arm] = r
    assert len(out["control"]["answers"]) > 1 and len(out["one-answer"]["answers"]) == 1
    control_tpls = [t["template_id"] for t in out["control"]["templates"]]
    short_tpls = [t["template_id"] for t in out["short"]["templates"]]
    assert "tpl-refund-timing" in control_tpls and "tpl-refund-timing-short" not in control_tpls
    assert "tpl-refund-timing-short" in short_tpls and "tpl-refund-timing" not in short_tpls
    no_session = c.post("/v1/suggest", json={"conversation": REFUND}, headers=AGENT).json()
    assert no_session["arm"] is None and "tpl-refund-timing-short" not in [t["template_id"] for t in no_session["templates"]]
    r = out["short"]
    c.post("/v1/feedback", json={"event": "used", "suggestion_id": "tpl-refund-timing-short", "kind": "template",
                                 "session_id": _session_in("short"), "request_id": r["request_id"], "arm": "short"}, headers=AGENT)
    assert c.app.state.suggestion_log.flush()
    store = FeedbackStore(tmp / "feedback.db", TEST_CIPHER)
    logged = {s.request_id: s.arm for s in store.suggestions("2000")}
    assert logged[r["request_id"]] == "short" and logged[no_session["request_id"]] is None
    assert store.feedback_between("2000")[-1].arm == "short"
