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
    rows = [ch for ch in s.index.chunks if ch.kind == "question" and ch.article_id == "return-policy"]
    assert sorted(ch.text for ch in rows) == sorted(["买错了东西还能退吗？", "不喜欢能不能退", "拆了包装还能七天无理由吗"])
    faq = {ch.article_id for ch in s.index.chunks if ch.kind == "question"} - {"return-policy"}
    assert faq == {"faq-invoice-download", "faq-internal-compensation"}  # the FAQ entries' own questions
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


ENTRY = """id: faq-service-hours
question: 客服几点下班？
similar:
  - 晚上十点还有人工客服吗
  - 人工客服的服务时间是几点到几点
answer: |
  在线客服每天 **8:00–24:00** 在线。
  其他时间可以留言，客服上班后第一时间回复。
category: 账户
intents: [refund_status]
negative_keywords: [电话客服]
status: published
audience: public
updated: 2026-11-20
"""


def _entry(kb_copy, text: str = ENTRY, name: str = "faq-service-hours.yaml"):
    (kb_copy / "faq").mkdir(exist_ok=True)
    path = kb_copy / "faq" / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_standalone_faq_entry_is_served_like_an_article(kb_copy, tmp_path, embedder):
    _entry(kb_copy)
    s = _suggester(kb_copy, tmp_path, embedder)
    entry = next(a for a in s.index.kb.published if a.id == "faq-service-hours")
    assert entry.source == "faq" and entry.title == "客服几点下班？" and entry.audience == "public"
    assert entry.questions == ("客服几点下班？", "晚上十点还有人工客服吗", "人工客服的服务时间是几点到几点")
    assert entry.body_line == 7  # the line after `answer: |`, where the Markdown starts
    out = s.suggest([c("请问客服几点下班")])
    assert out.answers[0].article_id == "faq-service-hours" and out.answers[0].direct
    assert "8:00–24:00" in out.answers[0].snippet
    # a negative keyword vetoes the entry: a request about the phone line is not this answer
    vetoed = s.suggest([c("电话客服几点下班")])
    assert "faq-service-hours" not in [a.article_id for a in vetoed.answers]


def test_kb_check_reports_faq_entry_problems_by_line(kb_copy):
    bad = ENTRY.replace("answer: |\n  在线客服每天 **8:00–24:00** 在线。\n  其他时间可以留言，客服上班后第一时间回复。\n", "answer: ''\n")
    bad = bad.replace("audience: public", "audience: everyone").replace("status: published", "status: live")
    path = _entry(kb_copy, bad + "colour: red\n")
    _, problems = check_kb(kb_copy)
    mine = sorted((p.line, p.message) for p in problems if p.path == path)
    assert [line for line, _ in mine] == [6, 10, 11, 13], mine
    assert "the answer is empty" in mine[0][1] and "status must be one of" in mine[1][1]
    assert "audience must be one of internal, public" in mine[2][1] and "unknown key 'colour'" in mine[3][1]


def test_a_question_in_an_entry_and_an_article_is_reported_with_both_places(kb_copy):
    _with_questions(kb_copy)
    path = _entry(kb_copy, ENTRY.replace("  - 晚上十点还有人工客服吗\n", "  - 不喜欢，能不能退\n"))
    _, problems = check_kb(kb_copy)
    [dup] = [p for p in problems if "duplicate question" in p.message]
    assert dup.path == path and dup.line == 2 and "articles/refund/return-policy.md:7" in dup.message
