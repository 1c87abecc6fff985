"""`assist model tune` and model versions: a tiny randomly initialised BERT built here (no download)
learns a toy retrieval; versions, use and rollback; the gate; what the training data may contain."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from assist.cli import app as cli
from assist.config import DEFAULT_MODEL
from assist.errors import ModelError
from assist.feedback import FeedbackEvent, FeedbackStore
from assist.index.model import MANIFEST, current_model_version, list_models, resolve_model, rollback_model, tuned_manifest, use_model, write_tuned
from assist.kb import check_kb
from assist.tune import Pair, TuneOptions, batches, feedback_pairs, gate, held_out_score, kb_pairs, split_held_out, train
from tests.conftest import TEST_CIPHER, TINY_KB
from tests.test_sample_kb import KB as SAMPLE_KB
from tests.test_sample_kb import ROOT


def tiny_bert(folder: Path, texts: list[str]) -> Path:
    """A 2-layer, 32-wide BERT with random weights and a character-level tokenizer over `texts`, laid
    out as a sentence-transformers folder with the E5 prompts, as the installed model is."""
    import torch
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordLevel
    from tokenizers.trainers import WordLevelTrainer
    from transformers import BertConfig, BertModel

    tok = Tokenizer(WordLevel(unk_token="<unk>"))
    tok.normalizer = normalizers.BertNormalizer(handle_chinese_chars=True, lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator(["query: passage: " + t for t in texts],
                            WordLevelTrainer(special_tokens=["<pad>", "<s>", "</s>", "<unk>"], min_frequency=1))
    tok.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 1), ("</s>", 2)])
    folder.mkdir(parents=True)
    tok.save(str(folder / "tokenizer.json"))
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tok.get_vocab_size(), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=256, pad_token_id=0)
    BertModel(config).save_pretrained(str(folder))
    (folder / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}]))
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({"word_embedding_dimension": 32, "pooling_mode_mean_tokens": True}))
    (folder / "config_sentence_transformers.json").write_text(json.dumps({"prompts": {"query": "query: ", "passage": "passage: "}}))
    (folder / MANIFEST).write_text(json.dumps({"model": "tiny-bert", "files": {}}))
    return folder


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    kb, problems = check_kb(TINY_KB)
    assert not problems
    pairs = kb_pairs(kb)
    base = tiny_bert(tmp_path_factory.mktemp("tiny") / "base", [p.query for p in pairs] + [p.passage for p in pairs])
    return kb, pairs, base


def test_kb_pairs_come_from_faq_questions_intents_headings_and_templates(toy):
    kb, pairs, _ = toy
    sources = {p.source for p in pairs}
    assert {"kb-intent", "kb-heading", "kb-template"} <= sources
    refund = next(a for a in kb.published if a.id == "refund-timing")
    assert any(p.group == "refund-timing" and p.source == "kb-intent" for p in pairs)
    assert any(p.source == "kb-heading" and p.query in refund.body for p in pairs)
    for batch in batches(pairs, 8, __import__("random").Random(1)):  # never two pairs with one positive in a batch
        assert len({p.group for p in batch}) == len(batch) == len({p.query for p in batch})
    train_pairs, held = split_held_out(pairs, 0.3, 0)
    assert held and not {p.group for p in held} & {p.group for p in train_pairs}


def test_the_sample_kb_pairs_come_from_the_kb_files_alone():
    """Tuning from the KB must not see the eval: every training query is text written in the KB's files
    (a heading that happens to read like a labelled customer turn is the KB's own words)."""
    kb, problems = check_kb(SAMPLE_KB)
    assert not problems
    pairs = kb_pairs(kb)
    assert len(pairs) > 1000
    written = "\n".join(f.read_text(encoding="utf-8") for f in sorted(SAMPLE_KB.rglob("*")) if f.suffix in (".md", ".yaml"))
    outside = [p.query for p in pairs if p.query not in written]
    assert not outside, outside[:5]
    turns = set()
    for line in (ROOT / "evals" / "queries.jsonl").read_text(encoding="utf-8").splitlines():
        turns |= {t["text"].strip() for t in json.loads(line)["conversation"] if t["role"] == "customer"}
    assert len({p.query for p in pairs} & turns) <= 3  # coincidences only, like the heading 积分怎么用


def test_feedback_pairs_use_the_stored_redacted_text(tmp_path, toy):
    kb, _, _ = toy
    store = FeedbackStore(tmp_path / "fb.db", TEST_CIPHER)
    try:
        store.add(FeedbackEvent(event="used", kind="article", suggestion_id="refund-timing", session_id="s1",
                                conversation=[{"role": "customer", "text": "退款到账了吗 我的手机13812345678"}]))
        store.add(FeedbackEvent(event="edited", kind="article", suggestion_id="refund-timing", session_id="s2",
                                conversation=[{"role": "customer", "text": "钱什么时候退回来"}]))
        pairs = feedback_pairs(store, kb)
    finally:
        store.close()
    assert {p.source for p in pairs} == {"feedback-used", "feedback-edited"}
    assert all("13812345678" not in p.query for p in pairs)  # the store redacted it before anything could train on it
    assert next(p for p in pairs if p.source == "feedback-edited").weight < next(p for p in pairs if p.source == "feedback-used").weight


def test_a_tiny_bert_learns_the_toy_retrieval(toy):
    _, pairs, base = toy
    opts = TuneOptions(epochs=60, batch_size=16, lr=3e-3, held_out=0, max_passage_tokens=64, seed=3, warmup=0.05)
    from assist.tune import Encoder

    before = held_out_score(Encoder(base), pairs, opts)
    enc, result = train(base, pairs, [], opts)
    after = held_out_score(enc, pairs, opts)
    assert result.steps > 10 and result.stopped == "done"
    assert after["mrr@10"] > before["mrr@10"] + 0.2, (before, after)
    frozen = enc.model.embeddings.word_embeddings.weight
    assert not frozen.requires_grad


def test_training_keeps_the_best_held_out_state_and_stops_on_time(toy):
    _, pairs, base = toy
    train_pairs, held = split_held_out(pairs, 0.2, 0)
    opts = TuneOptions(epochs=2000, batch_size=16, lr=2e-3, held_out=0.2, max_minutes=0.02, eval_every=2, seed=1)
    enc, result = train(base, train_pairs, held, opts)
    assert result.stopped == "time" and result.steps < 2000 * len(train_pairs) / 16
    best = max([result.held_out_before["mrr@10"]] + [r["held_out"]["mrr@10"] for r in result.history if "held_out" in r])
    assert result.held_out_after["mrr@10"] == pytest.approx(best, abs=1e-3)


def test_versions_use_and_rollback(tmp_path, toy):
    _, pairs, base = toy
    models = tmp_path / "models"
    enc, result = train(base, pairs[:40], [], TuneOptions(epochs=1, batch_size=8, lr=1e-3, held_out=0))
    folder = write_tuned(models, "tuned-a", base, enc.model.save_pretrained, {"model": "tiny-bert+tuned-a", "kind": "tuned"})
    assert (folder / "onnx" / "model.onnx").is_file() and (folder / "onnx" / "model_qint8.onnx").is_file()
    assert tuned_manifest(models, "tuned-a")["model"] == "tiny-bert+tuned-a"
    with pytest.raises(ModelError):
        write_tuned(models, "tuned-a", base, enc.model.save_pretrained, {"model": "x"})  # versions are immutable
    assert current_model_version(models) is None
    assert use_model(models, "tuned-a") == ("default", "tuned-a")
    assert resolve_model(DEFAULT_MODEL, models) == folder
    from assist.index.embed import OnnxEmbedder

    emb = OnnxEmbedder(folder)  # the int8 export encodes like the installed model's
    assert emb.model_id == "tiny-bert+tuned-a@onnx-int8" and emb.encode_queries(["退款多久到账"]).shape == (1, 32)
    assert [r["version"] for r in list_models(models) if r["current"]] == ["tuned-a"]
    with pytest.raises(ModelError, match="no complete model version"):
        use_model(models, "tuned-nope")
    assert rollback_model(models) == ("tuned-a", "default")
    assert current_model_version(models) is None
    with pytest.raises(ModelError, match="no earlier model"):
        rollback_model(models)
    (folder / "onnx" / "model_qint8.onnx").write_bytes(b"")  # a damaged version is not offered
    assert tuned_manifest(models, "tuned-a") is None


def test_the_gate_promotes_only_a_better_model():
    base = {"variants": {"full": {"answer_hit@3": 0.80, "answer_hit@1": 0.60, "intent_accuracy": 0.70, "latency_ms_p50": 9.0}}}

    def cand(**full):
        return {"variants": {"full": {**base["variants"]["full"], **full}}}

    held = {"mrr@10": 0.5}
    assert gate(base, cand(**{"answer_hit@3": 0.83}), held, {"mrr@10": 0.6}, 0.02)["passed"]
    flat = gate(base, base, held, held, 0.02)
    assert not flat["passed"] and not flat["improved"]
    worse = gate(base, cand(**{"answer_hit@3": 0.83, "intent_accuracy": 0.60}), held, held, 0.02)
    assert not worse["passed"] and [r["metric"] for r in worse["regressions"]] == ["full.intent_accuracy"]
    held_worse = gate(base, cand(**{"answer_hit@3": 0.83}), held, {"mrr@10": 0.4}, 0.02)
    assert not held_worse["passed"] and held_worse["regressions"][0]["metric"] == "held_out.mrr@10"


def test_the_commands_write_list_use_and_roll_back(tmp_path, toy, monkeypatch):
    """`model tune --no-gate` writes a version that is not in use; `use` and `rollback` switch."""
    import shutil

    from assist.config import get_settings
    from assist.index.model import model_dir

    _, _, base = toy
    models = tmp_path / "models"
    shutil.copytree(base, model_dir(models))  # the tiny model stands in for the installed default
    monkeypatch.setenv("ASSIST_MODELS_DIR", str(models))
    monkeypatch.setenv("ASSIST_EMBEDDING__BACKEND", "hashing")
    monkeypatch.setenv("ASSIST_INDEX_DIR", str(tmp_path / "idx"))
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        r = runner.invoke(cli, ["model", "tune", "--kb", str(TINY_KB), "--no-gate", "--epochs", "1", "--batch-size", "8", "--seed", "2"])
        assert r.exit_code == 0, r.output
        version = next(row["version"] for row in list_models(models) if row["version"] != "default")
        assert f"model {version} written (gate skipped, not in use)" in r.output
        report = json.loads((models / "tuned" / version / "report.json").read_text(encoding="utf-8"))
        assert report["promoted"] is False and report["data"]["pairs"] > 0
        assert (models / "tuned" / version / "report.md").is_file()
        r = runner.invoke(cli, ["model", "use", version, "--no-build"])
        assert r.exit_code == 0 and f"model in use: {version} (was default)" in r.output, r.output
        r = runner.invoke(cli, ["model", "list"])
        assert f"* {version}" in r.output
        r = runner.invoke(cli, ["model", "rollback", "--no-build"])
        assert r.exit_code == 0 and f"model in use: default (was {version})" in r.output
        r = runner.invoke(cli, ["model", "rollback", "--no-build"])
        assert r.exit_code == 1 and "no earlier model to roll back to" in r.output and "Traceback" not in r.output
        r = runner.invoke(cli, ["model", "tune", "--kb", str(TINY_KB), "--pairs", str(TINY_KB / "intents.yaml")])
        assert r.exit_code == 1 and "--pairs and --corpus go together" in r.output
    finally:
        get_settings.cache_clear()


def test_pair_dataclass_is_hashable_for_dedupe():
    assert Pair("a", "b", "g", "kb-faq") == Pair("a", "b", "g", "kb-faq")
