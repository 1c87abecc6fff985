import json

import pytest
from typer.testing import CliRunner

from assist.cli import app
from evals.metrics import macro_f1
from evals.report import compare_reports
from tests.conftest import DATA, TEST_CIPHER, TINY_KB

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
    assert set(report["variants"]) == {"full", "hybrid", "dense", "bm25", "last_turn", "no_questions", "no_direct", "no_synonyms"}
    full = report["variants"]["full"]
    for key in ("answer_hit@1", "answer_hit@3", "answer_mrr@10", "answer_ndcg@10", "template_hit@3", "intent_accuracy",
                "intent_macro_f1", "oos_precision", "oos_recall", "escalation_precision", "escalation_recall",
                "abstain_rate_in_scope", "latency_ms_p50", "latency_ms_p95"):
        assert 0 <= full[key] <= (1 if "latency" not in key else 1e6), key
    assert full["answer_hit@3"] >= 0.8  # the tiny set is easy: a broken pipeline fails here
    assert full["escalation_recall"] == 1.0 and full["oos_recall"] == 1.0
    assert report["per_intent"]["refund_status"]["n"] == 1
    slices = full["slices"]
    assert set(slices) == {"chinese", "english", "cross_lingual"}
    assert slices["english"]["n"] == 1 and slices["chinese"]["n"] == 5
    page = (out / "report.html").read_text()
    assert "Language slices" in page and "cross_lingual" in page
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
    worse_english = json.loads(json.dumps(report))
    worse_english["variants"]["full"]["slices"]["english"]["answer_hit@3"] -= 0.5  # the slices are gated too
    (out / "worse-english.json").write_text(json.dumps(worse_english))
    gate = runner.invoke(app, ["eval", "compare", str(out / "report.json"), str(out / "worse-english.json")])
    assert gate.exit_code == 1 and "full.english.answer_hit@3" in gate.output


def test_compare_treats_lower_is_better_metrics_the_right_way():
    before = {"variants": {"full": {"abstain_rate_in_scope": 0.10, "hit@1": 0.5}}}
    after = {"variants": {"full": {"abstain_rate_in_scope": 0.20, "hit@1": 0.6}}}
    rows, failed = compare_reports(before, after, 0.02)
    assert failed == 1 and [r[0] for r in rows if r[3]] == ["full.abstain_rate_in_scope"]


def test_macro_f1_averages_over_gold_labels():
    assert macro_f1(["a", "a", "b"], ["a", "a", "b"]) == 1.0
    assert macro_f1(["a", "b"], ["a", "a"]) == pytest.approx((2 / 3 + 0) / 2)


def test_used_feedback_becomes_labelled_cases_once(tmp_path, store_key_env):
    from assist.feedback import FeedbackEvent, FeedbackStore

    db = tmp_path / "fb.db"
    store = FeedbackStore(db, TEST_CIPHER)
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


CORPUS = [
    {"id": "a1", "title": "退款到账", "text": "退款审核通过后 1 到 3 个工作日原路退回银行卡"},
    {"id": "a2", "title": "快递延误", "text": "快递几天没有更新物流信息时可以申请催件"},
    {"id": "a3", "title": "发票重开", "text": "发票抬头写错了可以在订单页申请重新开具发票"},
]
QUERIES = [
    {"id": "q1", "text": "退款几天到银行卡", "relevant": ["a1"]},
    {"id": "q2", "text": "物流信息不更新 催件", "relevant": ["a2"]},
    {"id": "q3", "text": "发票抬头错了 重开", "relevant": ["a3"]},
]


def write_rows(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_eval_retrieval_scores_each_variant_and_writes_reports(env):
    corpus, queries = write_rows(env / "corpus.jsonl", CORPUS), write_rows(env / "queries.jsonl", QUERIES)
    out = env / "out"
    result = runner.invoke(app, ["eval", "retrieval", "--corpus", str(corpus), "--queries", str(queries), "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["n_queries"] == 3 and set(report["variants"]) == {"bm25", "dense", "hybrid"}
    assert report["variants"]["hybrid"]["hit@1"] == 1.0  # each query shares its words with one document only
    assert report["model"].startswith("hashing-fake")
    assert (out / "report.html").read_text().startswith("<!doctype html>")
    bad = runner.invoke(app, ["eval", "retrieval", "--corpus", str(corpus), "--queries", str(queries), "--variants", "magic"])
    assert bad.exit_code == 1 and "unknown variant(s) magic" in bad.output


def test_external_corpus_index_uses_the_configured_dense_settings(env, embedder):
    from assist.config import Settings
    from evals.io import eval_index_dir
    from evals.retrieval import index_corpus

    corpus = write_rows(env / "corpus.jsonl", CORPUS)
    s = Settings(index_dir=env / "idx", dense={"kind": "hnsw", "hnsw_ef_search": 7}, hybrid={"bm25_weight": 0.5})
    index = index_corpus(s, corpus, embedder)
    assert index.dense_index.hnsw.efSearch == 7 and index.hybrid.bm25_weight == 0.5
    assert index.path.parent == eval_index_dir(s, corpus, embedder.model_id)
    assert eval_index_dir(s, corpus, embedder.model_id) != eval_index_dir(s, corpus, "another-model")


def test_eval_intents_reports_accuracy_and_out_of_scope(env):
    train = write_rows(env / "train.jsonl", [
        {"text": t, "intent": i} for i, texts in {
            "refund": ["退款什么时候到账", "退款到账要几天", "钱什么时候退回来"],
            "shipping": ["快递怎么还没到", "物流不更新了", "包裹几天没动"],
        }.items() for t in texts
    ] + [{"text": t, "intent": "oos", "is_oos": True} for t in ["今天天气怎么样", "明天会下雨吗", "这只股票会涨吗", "讲个笑话吧"]])
    test = write_rows(env / "test.jsonl", [
        {"text": "退款几天到账", "intent": "refund"}, {"text": "快递物流不更新", "intent": "shipping"},
        {"text": "这只股票明天会涨吗", "intent": "oos", "is_oos": True},
    ])
    out = env / "out"
    result = runner.invoke(app, ["eval", "intents", "--train", str(train), "--test", str(test), "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["n"] == 3 and report["in_scope_accuracy"] == 1.0
    assert report["oos_recall"] == 1.0 and report["accuracy"] == 1.0
    assert 0 <= report["ece"] <= 1 and len(report["reliability"]) == 10 and report["train"]["out_of_scope_rows"] == 4
    assert "<svg" in (out / "report.html").read_text()  # the reliability diagram
    assert json.loads(result.stdout.strip().splitlines()[-1]) == report


def test_eval_run_without_conversations_is_a_clear_error(env):
    result = runner.invoke(app, ["eval", "run", str(env / "nowhere"), "--kb", str(TINY_KB)])
    assert result.exit_code == 1 and "no labelled conversations at" in result.output and "Traceback" not in result.output
