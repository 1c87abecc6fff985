from assist.index.chunk import chunk_article, chunk_kb, split_sections
from assist.index.lexical import Tokenizer
from assist.kb import load_kb
from tests.conftest import CHUNKING, TINY_KB


def _kb():
    return load_kb(TINY_KB)


def test_sections_carry_heading_paths_and_respect_code_fences():
    article = next(a for a in _kb().articles if a.id == "return-policy")
    sections = split_sections(article.title, article.body)
    paths = [" > ".join(s.heading_path) for s in sections]
    assert paths == ["七天无理由退货", "七天无理由退货 > 申请步骤", "七天无理由退货 > 不支持无理由退货的商品"]
    # the '#' line inside the fence stays in its section instead of starting a new one
    assert "# 这不是标题" in sections[-1].text


def test_nested_headings_build_a_path():
    sections = split_sections("标题", "# 标题\n引言\n## 甲\n甲的内容\n### 甲一\n甲一内容\n## 乙\n乙的内容")
    assert [s.heading_path for s in sections] == [("标题",), ("标题", "甲"), ("标题", "甲", "甲一"), ("标题", "乙")]


def test_drafts_are_not_chunked_and_templates_are_one_chunk_each():
    chunks = chunk_kb(_kb(), CHUNKING.size, CHUNKING.overlap)
    ids = {c.article_id for c in chunks}
    assert "draft-notice" not in ids
    templates = [c for c in chunks if c.kind == "template"]
    assert sorted(c.article_id for c in templates) == ["tpl-complaint-apology", "tpl-refund-timing", "tpl-refund-timing-vip", "tpl-shipping-delay"]


def test_long_sections_split_under_the_size_cap_at_sentence_ends():
    body = "## 长段落\n" + "".join(f"第{i}句话讲的是退款规则。" for i in range(60))
    article = next(a for a in _kb().articles if a.id == "refund-timing")
    long = article.__class__(**{**article.__dict__, "body": body})
    chunks = chunk_article(long, size=100, overlap=10)
    assert len(chunks) > 5
    assert all(len(c.text) <= 100 for c in chunks)
    assert all(c.text.endswith("。") for c in chunks)
    assert all(c.heading_path == (article.title, "长段落") for c in chunks)


def test_chunk_ids_are_stable_and_change_only_with_content():
    kb = _kb()
    first = [c.chunk_id for c in chunk_kb(kb, 120, 10)]
    assert first == [c.chunk_id for c in chunk_kb(_kb(), 120, 10)]
    assert len(set(first)) == len(first)
    article = next(a for a in kb.articles if a.id == "refund-timing")
    edited = article.__class__(**{**article.__dict__, "body": article.body.replace("1 到 3", "2 到 4")})
    before = {c.chunk_id for c in chunk_article(article, 120, 10)}
    after = {c.chunk_id for c in chunk_article(edited, 120, 10)}
    assert len(before - after) == 1 and len(after - before) == 1


def test_tokenizer_keeps_codes_and_kb_terms_whole_and_drops_stopwords():
    tok = Tokenizer(["原路退回", "AirBeat"])
    tokens = tok.tokenize("我的订单DD202611230001里的SKU-20931怎么原路退回呢？")
    assert "dd202611230001" in tokens and "sku-20931" in tokens
    assert "原路退回" in tokens
    assert "的" not in tokens and "呢" not in tokens and "怎么" not in tokens
    assert "？" not in tokens
