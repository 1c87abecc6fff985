"""The shipped sample KB and its labelled conversations: sizes, validity, and labels that point at real ids."""

import json
import re

import pytest
import yaml

from assist.kb import OUT_OF_SCOPE, check_kb
from tests.conftest import ROOT

KB = ROOT / "kb"
QUERIES = ROOT / "evals" / "queries.jsonl"


@pytest.fixture(scope="module")
def kb():
    kb, problems = check_kb(KB)
    assert problems == [], [str(p) for p in problems]
    return kb


@pytest.fixture(scope="module")
def rows():
    return [json.loads(line) for line in QUERIES.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_sample_kb_is_large_and_clean(kb):
    assert len(kb.published) >= 60
    assert len(kb.templates) >= 40
    assert len(kb.intents) >= 20
    assert all(len(i.examples) >= 8 for i in kb.intents)
    assert sum(1 for t in kb.templates if t.tier == "vip") >= 3
    assert any(i.escalate for i in kb.intents)
    sectioned = [a for a in kb.published if a.body.count("\n## ") >= 1]
    assert len(sectioned) >= 0.7 * len(kb.published)


def test_every_intent_has_a_template_and_an_article(kb):
    for intent in kb.intents:
        assert any(intent.name in t.intents for t in kb.templates), intent.name
        assert any(intent.name in a.intents for a in kb.published), intent.name


def test_conversation_set_covers_what_it_must(kb, rows):
    intents = {i.name for i in kb.intents}
    assert len(rows) >= 300
    assert len({r["id"] for r in rows}) == len(rows)
    assert {r["intent"] for r in rows} >= intents
    tags = [t for r in rows for t in r.get("tags") or []]
    assert sum(r["intent"] == OUT_OF_SCOPE for r in rows) >= 30
    assert sum(bool(r.get("escalate")) for r in rows) >= 30
    assert tags.count("context") >= 30
    assert tags.count("code") >= 20
    assert all(1 <= len(r["conversation"]) <= 6 and r["conversation"][-1]["role"] == "customer" for r in rows)


def test_gold_labels_point_at_existing_ids(kb, rows):
    articles = {a.id for a in kb.published}
    templates = {t.id for t in kb.templates}
    intents = {i.name for i in kb.intents} | {OUT_OF_SCOPE}
    for r in rows:
        assert r["intent"] in intents, r["id"]
        assert set(r.get("relevant") or []) <= articles, (r["id"], r.get("relevant"))
        assert set(r.get("templates") or []) <= templates, (r["id"], r.get("templates"))
        assert bool(r.get("relevant")) == (r["intent"] != OUT_OF_SCOPE), r["id"]


def test_no_conversation_repeats_an_intent_example(rows):
    data = yaml.safe_load((KB / "intents.yaml").read_text(encoding="utf-8"))
    examples = {"".join(e.split()) for i in data["intents"] for e in i["examples"]}
    for r in rows:
        for turn in r["conversation"]:
            assert "".join(turn["text"].split()) not in examples, (r["id"], turn["text"])


def _bigrams(text: str) -> set[str]:
    """Character bigrams without order numbers and SKU codes (shared codes are not shared wording)."""
    s = "".join(ch for ch in re.sub(r"[A-Za-z-]*\d[A-Za-z0-9-]*", " ", text.lower()) if ch.isalnum())
    return {s[i:i + 2] for i in range(len(s) - 1)}


def test_intent_training_text_does_not_copy_the_eval_conversations(kb, rows):
    """Examples, out-of-scope examples and the built-in out-of-scope set are written, not lifted from
    the labelled conversations: no pair reaches a character-bigram Jaccard of 0.5."""
    from assist.suggest.intent import builtin_out_of_scope

    training = [e for i in kb.intents for e in i.examples] + list(kb.out_of_scope_examples) + list(builtin_out_of_scope())
    assert len(builtin_out_of_scope()) >= 300
    grams = [(t, _bigrams(t)) for t in training]
    for r in rows:
        for turn in r["conversation"]:
            if turn["role"] != "customer":
                continue
            b = _bigrams(turn["text"])
            for text, g in grams:
                if len(b) >= 4 and g:  # a two-word turn ("我是V5会员") shares little but its words
                    assert len(b & g) / len(b | g) < 0.5, (r["id"], turn["text"], text)


def test_faq_questions_are_written_for_the_kb_not_lifted_from_the_eval_conversations(kb, rows):
    """Every published article has a standard question and at least 3 similar ones, and no question equals
    or nearly equals (character-bigram Jaccard 0.5) a customer turn of the labelled conversations."""
    from assist.kb import normalize_question

    assert all(len(a.questions) >= 4 for a in kb.published), [a.id for a in kb.published if len(a.questions) < 4]
    questions = [(q, _bigrams(q), normalize_question(q)) for a in kb.published for q in a.questions]
    for r in rows:
        for turn in r["conversation"]:
            if turn["role"] != "customer":
                continue
            b, norm = _bigrams(turn["text"]), normalize_question(turn["text"])
            for q, g, qn in questions:
                assert qn != norm, (r["id"], turn["text"], q)
                if len(b) >= 4 and g:
                    assert len(b & g) / len(b | g) < 0.5, (r["id"], turn["text"], q)
