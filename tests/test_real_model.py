"""The real default model end to end: Chinese queries find the right tiny-KB article by dense search alone."""

import pytest

from assist.config import get_settings
from assist.index.embed import embedder_from_settings
from assist.index.store import build_index, load_index
from tests.conftest import TINY_KB

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def real_index(tmp_path_factory):
    embedder = embedder_from_settings(get_settings(), build=True)  # as the product: int8 queries over fp32 passages
    index_dir = tmp_path_factory.mktemp("real-index")
    result = build_index(TINY_KB, index_dir, embedder)
    assert result.embedded == result.chunks
    return load_index(index_dir, embedder)


# Paraphrases that share few characters with the article text, so only the model can match them.
CASES = [
    ("钱什么时候能回到我的卡里？", "refund-timing"),
    ("登录不上去了，密码记不起来", "password-reset"),
    ("包裹好几天都没有动静了", "shipping-delay"),
    ("do you deliver to Singapore and how long does it take", "international-shipping"),
    ("买了不喜欢可以退吗，一周以内", "return-policy"),
]


@pytest.mark.parametrize("query,article", CASES)
def test_dense_search_finds_the_article(real_index, query, article):
    hits = real_index.search(query, k=3, mode="dense", kind="article")
    assert hits[0].chunk.article_id == article, [(h.chunk.article_id, round(h.score, 3)) for h in hits]


def test_manifest_names_the_real_model(real_index):
    assert real_index.manifest["model"]["id"].startswith("intfloat/multilingual-e5-small@")
    assert real_index.manifest["model"]["dim"] == 384
