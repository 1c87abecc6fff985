"""FAQ questions in article front matter: validated, indexed as question rows, merged per article,
shown as `matched_question`, and a word-for-word question is a direct answer."""

from assist.config import SuggestSettings
from assist.index.store import build_index, load_index
from assist.kb import check_kb, normalize_question
from assist.suggest.pipeline import Suggester
from tests.test_suggest import CHUNKING, FAKE, c

QUESTIONS = "questions:\n  - 买错了东西还能退吗？\n  - 不喜欢能不能退\n  - 拆了包装还能七天无理由吗\n"


def _with_questions(kb_copy, text: str = QUESTIONS):
    path = kb_copy / "articles" / "refund" / "return-policy.md"
    path.write_text(path.read_text(encoding="utf-8").replace("status: published", text + "status: published"), encoding="utf-8")
    return path


def _suggester(kb_copy, tmp_path, embedder, settings: SuggestSettings = FAKE) -> Suggester:
    build_index(kb_copy, tmp_path / "idx", embedder, chunking=CHUNKING)
    return Suggester(load_index(tmp_path / "idx", embedder), settings)


def test_questions_become_rows_of_their_article_and_the_answer_shows_a_section(kb_copy, tmp_path, embedder):
    _with_questions(kb_copy)
    s = _suggester(kb_copy, tmp_path, embedder)
    rows = [ch for ch in s.index.chunks if ch.kind == "question"]
    assert sorted(ch.text for ch in rows) == sorted(["买错了东西还能退吗？", "不喜欢能不能退", "拆了包装还能七天无理由吗"])
    assert {ch.article_id for ch in rows} == {"return-policy"}
    out = s.suggest([c("东西不喜欢能不能退，申请退货")])
    first = out.answers[0]
    assert first.article_id == "return-policy" and first.matched_question == "不喜欢能不能退"
    sections = {ch.chunk_id: ch for ch in s.index.chunks if ch.kind == "article" and ch.article_id == "return-policy"}
    assert first.chunk_id in sections and first.snippet != first.matched_question  # the agent reads a section of it
    assert len({a.article_id for a in out.answers}) == len(out.answers)  # one answer per article
    plain = s.with_settings(question_rows=False).suggest([c("东西不喜欢能不能退，申请退货")])
    assert all(a.matched_question is None for a in plain.answers)


def test_a_question_asked_word_for_word_is_a_direct_answer_even_where_retrieval_would_abstain(kb_copy, tmp_path, embedder):
    _with_questions(kb_copy)
    strict = SuggestSettings(abstain_min_dense=0.99, abstain_min_dense_oos=0.99)  # nothing clears this bar
    s = _suggester(kb_copy, tmp_path, embedder, strict)
    out = s.suggest([c("亲，请问买错了东西还能退吗")])  # filler and punctuation differ
    assert not out.abstained and out.answers[0].article_id == "return-policy"
    assert out.answers[0].direct and out.answers[0].matched_question == "买错了东西还能退吗？"
    assert out.answers[0].score > max([a.score for a in out.answers[1:]], default=0)
    assert s.suggest([c("买错了东西还能退吗，还有退款多久到")]).abstained  # more than the question: no shortcut
    assert s.with_settings(direct_answers=False).suggest([c("买错了东西还能退吗")]).abstained


def test_normalised_questions_ignore_width_punctuation_and_filler():
    assert normalize_question("亲，请问退款多久能到账呢？") == normalize_question("退款多久能到账") == "退款多久能到账"
    assert normalize_question("ＳＫＵ－３０１２７ 怎么用") == "sku30127怎么用"
    assert normalize_question("？？") == ""


def test_kb_check_reports_duplicate_questions_with_both_places_and_bad_lists(kb_copy):
    first = _with_questions(kb_copy)
    other = kb_copy / "articles" / "refund" / "refund-timing.md"
    other.write_text(other.read_text(encoding="utf-8").replace(
        "status: published", "questions:\n  - 不喜欢，能不能退？\nstatus: published"), encoding="utf-8")
    _, problems = check_kb(kb_copy)
    [dup] = [p for p in problems if "duplicate question" in p.message]
    assert dup.path == first and dup.line == 7 and "'不喜欢能不能退'" in dup.message  # the later file, at its questions
    assert "(also in articles/refund/refund-timing.md:7)" in dup.message  # and where the same question already is
    first.write_text(first.read_text(encoding="utf-8").replace(QUESTIONS, "questions: {a: 1}\n"), encoding="utf-8")
    _, problems = check_kb(kb_copy)
    assert any(p.path == first and "'questions' must be a list of strings" in p.message for p in problems)
