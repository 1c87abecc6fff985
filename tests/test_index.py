import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from assist.errors import IndexMismatch, IndexNotFound
from assist.index.embed import HashingEmbedder
from assist.index.store import build_index, current_version, list_versions, load_index, rollback
from tests.conftest import CHUNKING

ROOT = Path(__file__).resolve().parents[1]


def test_second_build_without_changes_embeds_nothing(kb_copy, tmp_path, embedder):
    first = build_index(kb_copy, tmp_path / "idx", embedder, chunking=CHUNKING)
    second = build_index(kb_copy, tmp_path / "idx", embedder, chunking=CHUNKING)
    assert first.embedded == first.chunks > 0 and first.reused == 0
    assert second.embedded == 0 and second.reused == second.chunks == first.chunks
    assert second.version != first.version
    assert current_version(tmp_path / "idx") == second.version


def test_editing_one_article_reembeds_only_its_changed_chunks(kb_copy, tmp_path, embedder):
    first = build_index(kb_copy, tmp_path / "idx", embedder, chunking=CHUNKING)
    article = kb_copy / "articles/logistics/shipping-delay.md"
    article.write_text(article.read_text(encoding="utf-8").replace("72 小时", "48 小时"), encoding="utf-8")
    second = build_index(kb_copy, tmp_path / "idx", embedder, chunking=CHUNKING)
    assert second.embedded == 1
    assert second.reused == first.chunks - 1
    hits = load_index(tmp_path / "idx", embedder).search("48 小时 物流 更新", k=1, mode="bm25")
    assert hits[0].chunk.article_id == "shipping-delay" and "48 小时" in hits[0].chunk.text


def test_rollback_restores_the_previous_version(kb_copy, tmp_path, embedder):
    idx = tmp_path / "idx"
    first = build_index(kb_copy, idx, embedder, chunking=CHUNKING)
    (kb_copy / "articles/account/password-reset.md").unlink()
    second = build_index(kb_copy, idx, embedder, chunking=CHUNKING)
    assert "password-reset" not in {c.article_id for c in load_index(idx, embedder).chunks}
    assert rollback(idx) == first.version
    assert current_version(idx) == first.version
    restored = load_index(idx, embedder)
    assert restored.version == first.version
    assert restored.search("忘记密码 重置", k=1, mode="bm25")[0].chunk.article_id == "password-reset"
    assert rollback(idx, second.version) == second.version
    with pytest.raises(IndexNotFound):
        rollback(idx, "no-such-version")
    assert [v.current for v in list_versions(idx)] == [False, True]


def test_a_failing_build_leaves_current_untouched(kb_copy, tmp_path, embedder):
    idx = tmp_path / "idx"
    first = build_index(kb_copy, idx, embedder, chunking=CHUNKING)

    class Broken(HashingEmbedder):
        def encode_passages(self, texts):
            raise RuntimeError("encoder crashed")

    article = kb_copy / "articles/refund/refund-timing.md"
    article.write_text(article.read_text(encoding="utf-8") + "\n## 新章节\n新的内容需要重新编码。\n", encoding="utf-8")
    with pytest.raises(RuntimeError):
        build_index(kb_copy, idx, Broken(dim=256), chunking=CHUNKING)
    assert current_version(idx) == first.version
    assert [v.version for v in list_versions(idx)] == [first.version]


KILL_SCRIPT = """
import sys, time
from assist.config import ChunkSettings
from assist.index.embed import HashingEmbedder
from assist.index.store import build_index

class Slow(HashingEmbedder):
    def encode_passages(self, texts):
        print("embedding", flush=True)
        time.sleep(0.5)
        return super().encode_passages(texts)

build_index(sys.argv[1], sys.argv[2], Slow(dim=256), chunking=ChunkSettings(size=50, overlap=0))
"""


def test_killing_a_build_midway_leaves_current_valid(kb_copy, tmp_path, embedder):
    idx = tmp_path / "idx"
    first = build_index(kb_copy, idx, embedder, chunking=CHUNKING)
    for path in (kb_copy / "articles").rglob("*.md"):  # every chunk changes, so the build has work to do
        path.write_text(path.read_text(encoding="utf-8") + "\n\n补充说明：本条款自 2026 年 12 月起生效。\n", encoding="utf-8")
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(kb_copy), str(idx)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "embedding"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert current_version(idx) == first.version
    assert load_index(idx, embedder).version == first.version
    # the next build finishes, cleans the half-written folder and reuses what the killed build embedded
    third = build_index(kb_copy, idx, embedder, chunking=CHUNKING)
    assert current_version(idx) == third.version
    assert not list(idx.glob(".building-*"))


def test_manifest_records_model_counts_and_kb_hash(tiny_index, embedder):
    m = tiny_index.manifest
    assert m["schema_version"] == 1
    assert m["model"] == {"id": embedder.model_id, "dim": embedder.dim}
    assert m["counts"]["chunks"] == len(tiny_index.chunks)
    assert m["kb"]["articles"] == 7 and m["kb"]["templates"] == 4 and m["kb"]["intents"] == 4
    assert len(m["kb"]["hash"]) == 64
    assert m["dense"]["kind"] == "flat"


def test_load_refuses_another_model_or_a_newer_schema(kb_copy, tmp_path, embedder):
    idx = tmp_path / "idx"
    build_index(kb_copy, idx, embedder, chunking=CHUNKING)
    with pytest.raises(IndexMismatch, match="rebuild"):
        load_index(idx, HashingEmbedder(dim=128))
    manifest_file = idx / current_version(idx) / "manifest.json"
    manifest = json.loads(manifest_file.read_text())
    manifest["schema_version"] = 99
    manifest_file.write_text(json.dumps(manifest))
    with pytest.raises(IndexMismatch, match="newer"):
        load_index(idx, embedder)


def test_load_without_an_index_is_a_clear_error(tmp_path, embedder):
    with pytest.raises(IndexNotFound, match="assist index build"):
        load_index(tmp_path / "empty", embedder)


@pytest.mark.parametrize("mode", ["bm25", "dense", "hybrid"])
def test_each_mode_finds_the_right_article(tiny_index, mode):
    hits = tiny_index.search("退款 到账 银行卡 工作日", k=3, mode=mode, kind="article")
    assert hits[0].chunk.article_id == "refund-timing"
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    hits = tiny_index.search("忘记密码 账户冻结", k=3, mode=mode, kind="article")
    assert hits[0].chunk.article_id == "password-reset"


def test_kind_filter_and_codes(tiny_index):
    hits = tiny_index.search("退款 到账", k=2, mode="hybrid", kind="template")
    assert hits and all(h.chunk.kind == "template" for h in hits)
    assert hits[0].chunk.article_id == "tpl-refund-timing"
    hits = tiny_index.search("SKU-20931 能退吗", k=1, mode="bm25")
    assert hits[0].chunk.article_id == "return-policy"


def test_hybrid_scores_combine_both_retrievers(tiny_index):
    hits = tiny_index.search("International parcels delivery time", k=3, mode="hybrid")
    assert hits[0].chunk.article_id == "international-shipping"
    assert hits[0].dense_score is not None and hits[0].bm25_score > 0
    assert tiny_index.search("", k=3, mode="bm25") == []


def test_search_reports_the_time_of_each_stage(tiny_index):
    timings = {}
    with_timings = tiny_index.search("退款 到账 银行卡", k=3, mode="hybrid", timings=timings)
    assert set(timings) == {"encode", "dense", "bm25", "fusion", "rank"} and all(v >= 0 for v in timings.values())
    assert with_timings == tiny_index.search("退款 到账 银行卡", k=3, mode="hybrid")  # timing changes nothing
    bm25_only = {}
    tiny_index.search("退款", k=3, mode="bm25", timings=bm25_only)
    assert set(bm25_only) == {"bm25", "rank"}


def test_each_fusion_method_ranks_a_row_both_retrievers_like_first():
    from assist.config import HybridSettings
    from assist.index.search import FUSIONS, fuse

    dense = {1: 0.80, 2: 0.82, 3: 0.60}
    bm25 = {1: 9.0, 3: 1.0, 4: 0.5}  # row 1: nearly the best cosine and by far the best BM25
    rows = set(dense) | set(bm25)
    for method, fn in FUSIONS.items():
        settings = HybridSettings(method=method, bm25_weight=1.0)
        fused = fuse(dense, bm25, rows, settings)
        assert fused == fn(dense, bm25, rows, settings) and set(fused) == rows
        assert max(fused, key=fused.get) == 1, (method, fused)
    dense_only = fuse(dense, bm25, rows, HybridSettings(method="linear", bm25_weight=0.0))
    assert max(dense_only, key=dense_only.get) == 2  # with BM25 weighted 0 the best cosine wins


def test_vectors_are_normalised_rows_of_the_chunks(tiny_index):
    v = np.asarray(tiny_index.vectors)
    assert v.shape == (len(tiny_index.chunks), tiny_index.embedder.dim)
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)


def test_flat_fp16_storage_ranks_like_fp32_and_hands_rows_back():
    from assist.config import DenseSettings
    from assist.index.dense import build_dense, search_dense, stores_vectors

    rng = np.random.default_rng(0)
    x = rng.standard_normal((2000, 64)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    fp32 = build_dense(x, DenseSettings(flat_storage="fp32"))
    fp16 = build_dense(x, DenseSettings(flat_storage="fp16"))
    assert stores_vectors(fp16) and stores_vectors(fp32)
    assert fp16.sa_code_size() == 64 * 2  # two bytes a dimension
    np.testing.assert_allclose(fp16.reconstruct_batch(np.arange(5)), x[:5], atol=1e-3)
    overlap = []
    for q in x[:50] + 0.1 * rng.standard_normal((50, 64)).astype(np.float32):
        q /= np.linalg.norm(q)
        s32, r32 = search_dense(fp32, q, 20)
        s16, r16 = search_dense(fp16, q, 20)
        assert r16[0] == r32[0] and abs(s16[0] - s32[0]) < 1e-3
        overlap.append(len(set(r16) & set(r32)) / 20)
    assert np.mean(overlap) > 0.98
