"""kb/synonyms.yaml: validated by kb check, expands BM25 queries, words kept whole by jieba."""

from assist.index.lexical import LexicalIndex
from assist.index.store import build_index, load_index
from assist.kb import check_kb
from tests.test_suggest import CHUNKING


def test_a_synonym_finds_the_section_that_uses_the_other_word(kb_copy, tmp_path, embedder):
    (kb_copy / "synonyms.yaml").write_text("synonyms:\n  - [退钱, 退款]\n", encoding="utf-8")
    build_index(kb_copy, tmp_path / "idx", embedder, chunking=CHUNKING)
    index = load_index(tmp_path / "idx", embedder)
    assert index.kb.synonyms == (("退钱", "退款"),)
    lexical = index.lexical
    assert "退款" in lexical.query_terms("退钱多久") and "退款" not in lexical.query_terms("退钱多久", expand=False)
    expanded, plain = lexical.scores("退钱多久"), lexical.scores("退钱多久", expand=False)
    refund = [n for n, ch in enumerate(index.chunks) if ch.article_id == "refund-timing"]
    assert expanded[refund].max() > 0 and plain[refund].max() == 0  # "退钱" alone is in no article
    hits = index.search("退钱多久", k=3, mode="bm25", kind="article")
    assert hits and hits[0].chunk.article_id in ("refund-timing", "return-policy")
    index.hybrid = index.hybrid.model_copy(update={"synonyms": False})
    assert index.search("退钱多久", k=3, mode="bm25", kind="article") == []


def test_synonyms_survive_save_and_load_and_tokenize_whole(tmp_path):
    built = LexicalIndex.build(["扫地机器人 连不上 网络", "空调 安装"], [], (("扫地机器人", "扫地机"),))
    built.save(tmp_path / "lex")
    loaded = LexicalIndex.load(tmp_path / "lex")
    assert loaded.synonyms == (("扫地机器人", "扫地机"),)
    assert "扫地机" in loaded.tokenizer.tokenize("我的扫地机坏了")
    assert "扫地机器人" in loaded.query_terms("扫地机坏了")  # the indexed word, found through its synonym
    assert "扫地机器人" not in loaded.query_terms("扫地机坏了", expand=False)


def test_kb_check_reports_bad_synonym_groups_by_line(kb_copy):
    (kb_copy / "synonyms.yaml").write_text(
        "synonyms:\n  - [价格, 费用]\n  - [单独一个]\n  - [退款, 退 款]\n  - [费用, 收费]\n", encoding="utf-8")
    _, problems = check_kb(kb_copy)
    mine = sorted((p.line, p.message) for p in problems if p.path.name == "synonyms.yaml")
    assert mine == [
        (3, "a synonym group is a list of at least two words, e.g. [多少钱, 价格, 费用]"),
        (4, "synonym '退 款' has a space: use single words"),
        (5, "'费用' is already in the group at line 2"),
    ], mine
