"""Our metrics against trec_eval (pytrec_eval) on hand-made runs: ties, graded and several relevant documents."""

import pytest

from evals.metrics import evaluate, hit_rate, ndcg, parse_metric, ranking, recall, reciprocal_rank

pytrec_eval = pytest.importorskip("pytrec_eval")

QRELS = {
    "q1": {"a": 1},
    "q2": {"b": 2, "c": 1, "z": 1},  # graded, one relevant never retrieved
    "q3": {"d": 1, "e": 1},
    "q4": {"x": 1},  # nothing relevant retrieved
    "q5": {"k": 1},
}
RUNS = {
    "q1": {"f": 0.9, "a": 0.8, "g": 0.7},
    "q2": {"c": 0.5, "b": 0.5, "h": 0.5, "i": 0.1},  # a three-way tie at the top
    "q3": {"e": 1.0, "j": 0.9, "d": 0.8, "l": 0.7, "m": 0.6, "n": 0.5},
    "q4": {"p": 0.3, "q": 0.2},
    "q5": {f"d{i:02d}": 1.0 - i / 100 for i in range(12)} | {"k": 0.5},  # relevant at rank 13
}


def reference():
    evaluator = pytrec_eval.RelevanceEvaluator(QRELS, {"success.1,3,5", "ndcg_cut.10", "recall.5"})
    full = evaluator.evaluate(RUNS)
    # trec_eval's recip_rank has no cutoff: cut the runs to 10 for MRR@10
    cut = {q: dict(sorted(run.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)[:10]) for q, run in RUNS.items()}
    rr = pytrec_eval.RelevanceEvaluator(QRELS, {"recip_rank"}).evaluate(cut)
    return full, rr


def test_per_query_values_match_trec_eval():
    full, rr = reference()
    for q, run in RUNS.items():
        ranked = ranking(run)
        assert hit_rate(ranked, QRELS[q], 1) == pytest.approx(full[q]["success_1"])
        assert hit_rate(ranked, QRELS[q], 5) == pytest.approx(full[q]["success_5"])
        assert ndcg(ranked, QRELS[q], 10) == pytest.approx(full[q]["ndcg_cut_10"])
        assert recall(ranked, QRELS[q], 5) == pytest.approx(full[q]["recall_5"])
        assert reciprocal_rank(ranked, QRELS[q], 10) == pytest.approx(rr[q]["recip_rank"])


def test_means_match_trec_eval():
    full, rr = reference()
    runs = [(ranking(RUNS[q]), QRELS[q]) for q in QRELS]
    ours = evaluate(runs, ["hit@3", "ndcg@10", "mrr@10"])
    assert ours["hit@3"] == pytest.approx(sum(v["success_3"] for v in full.values()) / len(full))
    assert ours["ndcg@10"] == pytest.approx(sum(v["ndcg_cut_10"] for v in full.values()) / len(full))
    assert ours["mrr@10"] == pytest.approx(sum(v["recip_rank"] for v in rr.values()) / len(rr))


def test_ties_break_like_trec_eval_and_duplicates_count_once():
    assert ranking({"c": 0.5, "b": 0.5, "h": 0.5}) == ["h", "c", "b"]
    # a repeated id counts once, at its first place: "a" is second, not third
    assert reciprocal_rank(["x", "x", "a"], {"a"}, 2) == 0.5
    assert hit_rate(["x", "x", "a"], {"a"}, 1) == 0.0


def test_metric_names_are_parsed_in_one_place():
    assert parse_metric("ndcg@10")[1] == 10
    with pytest.raises(ValueError):
        parse_metric("precision@x")
