import json

import pytest
from typer.testing import CliRunner

from assist.cli import app
from evals.metrics import macro_f1
from evals.report import compare_reports
from tests.conftest import DATA, TINY_KB

runner = CliRunner()


@pytest.fixture
def env(fake_env):
    return fake_env


def test_eval_run_writes_reports_per_variant(env):
    out = env / "out"
    result = runner.invoke(app, ["eval", "run", str(DATA / "evals"), "--kb", str(TINY_KB), "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["n_conversations"] == 6
    assert set(report["variants"]) == {"full", "hybrid", "dense", "bm25", "last_turn"}
    full = report["variants"]["full"]
    for key in ("answer_hit@1", "answer_hit@3", "answer_mrr@10", "answer_ndcg@10", "template_hit@3", "intent_accuracy",
                "intent_macro_f1", "oos_precision", "oos_recall", "escalation_precision", "escalation_recall",
                "abstain_rate_in_scope", "latency_ms_p50", "latency_ms_p95"):
        assert 0 <= full[key] <= (1 if "latency" not in key else 1e6), key
    assert full["answer_hit@3"] >= 0.8  # the tiny set is easy: a broken pipeline fails here
    assert full["escalation_recall"] == 1.0 and full["oos_recall"] == 1.0
    assert report["per_intent"]["refund_status"]["n"] == 1
    page = (out / "report.html").read_text()
    assert page.startswith("<!doctype html>") and "<svg" in page and "answer hit@k per variant" in page
    assert "http" not in page  # self-contained: nothing to download
    # the gate: a report against itself passes, a worse one fails
    same = runner.invoke(app, ["eval", "compare", str(out / "report.json"), str(out / "report.json")])
    assert same.exit_code == 0 and "no regression" in same.output
    worse = json.loads(json.dumps(report))
    worse["variants"]["full"]["answer_hit@3"] -= 0.05
    worse["variants"]["full"]["latency_ms_p50"] += 100  # latency is shown, never gated
    (out / "worse.json").write_text(json.dumps(worse))
    gate = runner.invoke(app, ["eval", "compare", str(out / "report.json"), str(out / "worse.json"), "--max-drop", "0.02"])
    assert gate.exit_code == 1
    assert "full.answer_hit@3" in gate.output and "REGRESSION" in gate.output
    assert sum("REGRESSION" in line for line in gate.output.splitlines()) == 1


def test_compare_treats_lower_is_better_metrics_the_right_way():
    before = {"variants": {"full": {"abstain_rate_in_scope": 0.10, "hit@1": 0.5}}}
    after = {"variants": {"full": {"abstain_rate_in_scope": 0.20, "hit@1": 0.6}}}
    rows, failed = compare_reports(before, after, 0.02)
    assert failed == 1 and [r[0] for r in rows if r[3]] == ["full.abstain_rate_in_scope"]


def test_macro_f1_averages_over_gold_labels():
    assert macro_f1(["a", "a", "b"], ["a", "a", "b"]) == 1.0
    assert macro_f1(["a", "b"], ["a", "a"]) == pytest.approx((2 / 3 + 0) / 2)


def test_used_feedback_becomes_labelled_cases_once(tmp_path):
    from assist.feedback import FeedbackEvent, FeedbackStore

    db = tmp_path / "fb.db"
    store = FeedbackStore(db)
    conv = ({"role": "customer", "text": "退款到账要多久？我手机 13812345678"},)
    store.add(FeedbackEvent("shown", "refund-timing", "article", "refund_status", "v1", 12.0, "s1", conv))
    store.add(FeedbackEvent("used", "refund-timing", "article", "refund_status", "v1", 12.0, "s1", conv))
    store.add(FeedbackEvent("used", "tpl-refund-timing", "template", "refund_status", "v1", 12.0, "s1", conv))
    store.add(FeedbackEvent("dismissed", "shipping-delay", "article", "refund_status", "v1", 12.0, "s1", conv))
    store.close()
    out = tmp_path / "cases.jsonl"
    first = runner.invoke(app, ["eval", "from-feedback", "--db", str(db), "--out", str(out)])
    assert first.exit_code == 0, first.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 1
    case = rows[0]
    assert case["relevant"] == ["refund-timing"] and case["templates"] == ["tpl-refund-timing"]
    assert case["intent"] == "refund_status" and "feedback" in case["tags"]
    assert "13812345678" not in json.dumps(case, ensure_ascii=False)  # stored redacted
    again = runner.invoke(app, ["eval", "from-feedback", "--db", str(db), "--out", str(out)])
    assert again.exit_code == 0 and "0 new case(s)" in again.output
    assert len(out.read_text().splitlines()) == 1
