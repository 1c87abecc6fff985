"""Fast tests of the embedder layer: the fake HashingEmbedder, make_embedder's errors, the install no-op check.
No model is loaded here (see test_model_slow.py for the real one)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from assist.config import DEFAULT_MODEL, EmbeddingSettings, Settings
from assist.index import model as model_mod
from assist.index.embed import (
    EmbedderError,
    HashingEmbedder,
    embedder_from_settings,
    make_embedder,
    passage_model_id,
    resolve_query_backend,
)
from assist.index.model import (
    MANIFEST,
    ModelInstallError,
    install_model,
    model_is_installed,
    resolve_model,
)


def test_hashing_tokens_are_words_chinese_chars_and_bigrams():
    assert HashingEmbedder.tokens("Refund 2 退款到账!") == ["refund", "2", "退", "款", "到", "账", "退款", "款到", "到账"]


def test_hashing_is_deterministic_across_processes():
    # Python's hash() is salted per process; the fake must not depend on it (vectors get cached on disk).
    code = "from assist.index.embed import HashingEmbedder; print(HashingEmbedder(64).encode_queries(['退款 refund 123']).tolist())"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    other = json.loads(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout)
    here = HashingEmbedder(64).encode_queries(["退款 refund 123"])
    np.testing.assert_array_equal(here, np.array(other, dtype=np.float32))


def test_hashing_vectors_are_float32_and_normalised():
    e = HashingEmbedder(dim=128)
    vecs = e.encode_passages(["退款多久到账", "how long is a refund", "!!!", ""])
    assert vecs.dtype == np.float32 and vecs.shape == (4, 128)
    np.testing.assert_allclose(np.linalg.norm(vecs[:2], axis=1), 1.0, rtol=1e-6)
    assert not vecs[2:].any()  # no tokens: the zero vector, not NaN
    assert e.encode_queries([]).shape == (0, 128)
    assert e.model_id == "hashing-fake-128" and e.dim == 128


def test_hashing_ranks_overlapping_chinese_text_first():
    e = HashingEmbedder()
    query = e.encode_queries(["退款多久到账"])[0]
    passages = ["快递一直不动，物流信息不更新", "退款审核通过后1-3个工作日到账", "发票抬头写错了可以申请重开"]
    scores = e.encode_passages(passages) @ query
    assert int(np.argmax(scores)) == 1
    assert scores[1] > max(scores[0], scores[2]) + 0.1


def test_make_embedder_rejects_unknown_backend(tmp_path):
    with pytest.raises(EmbedderError, match="unknown embedding backend 'gpu'.*onnx-int8"):
        make_embedder(DEFAULT_MODEL, backend="gpu", models_dir=tmp_path)


@pytest.mark.parametrize("backend", ["onnx-int8", "onnx", "torch"])
def test_make_embedder_says_how_to_install_the_default_model(tmp_path, backend):
    with pytest.raises(EmbedderError, match="run `assist model install`"):
        make_embedder(DEFAULT_MODEL, backend=backend, models_dir=tmp_path)


def test_make_embedder_onnx_needs_onnx_files_for_other_models(tmp_path):
    other = tmp_path / "some-model"
    other.mkdir()
    with pytest.raises(EmbedderError, match="use backend 'torch'"):
        make_embedder(str(other), backend="onnx-int8", models_dir=tmp_path)


def test_make_embedder_hashing_needs_no_model(tmp_path):
    assert isinstance(make_embedder(DEFAULT_MODEL, backend="hashing", models_dir=tmp_path), HashingEmbedder)


def test_the_library_default_query_backend_is_the_settings_default():
    import inspect

    default = inspect.signature(make_embedder).parameters["query_backend"].default
    assert default == EmbeddingSettings().query_backend == "auto"


def test_make_embedder_rejects_unknown_query_backend(tmp_path):
    with pytest.raises(EmbedderError, match="unknown query backend 'fast'.*same, auto"):
        make_embedder(DEFAULT_MODEL, backend="onnx", query_backend="fast", models_dir=tmp_path)


def test_embedder_from_settings_follows_the_settings(tmp_path):
    s = Settings(models_dir=tmp_path, embedding={"backend": "hashing"})
    e = embedder_from_settings(s, build=True)
    assert isinstance(e, HashingEmbedder) and e.model_id == passage_model_id(DEFAULT_MODEL, "hashing", tmp_path)
    with pytest.raises(EmbedderError, match="run `assist model install`"):
        embedder_from_settings(Settings(models_dir=tmp_path))  # the default: onnx passages, int8 queries


def test_resolve_model_maps_only_the_default_name(tmp_path):
    assert resolve_model(DEFAULT_MODEL, tmp_path) == tmp_path / "multilingual-e5-small"
    assert resolve_model("BAAI/bge-small-zh-v1.5", tmp_path) == "BAAI/bge-small-zh-v1.5"


def _fake_installed(models_dir, size=3):
    """A folder whose manifest claims one 3-byte file and the pinned inputs."""
    folder = models_dir / "multilingual-e5-small"
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"x" * size)
    manifest = {
        "model": DEFAULT_MODEL, "layout": model_mod.LAYOUT_VERSION,
        "inputs": {"image": {"sha256": model_mod.IMAGE[3]}, "tokenizer": {"sha256": model_mod.TOKENIZER[3]}},
        "files": {"model.safetensors": {"size": 3, "sha256": "-"}},
    }
    (folder / MANIFEST).write_text(json.dumps(manifest))
    return folder


def _no_work(spec):
    raise AssertionError("install_model did work although the folder is complete")


def test_install_is_a_no_op_when_complete(tmp_path, monkeypatch):
    folder = _fake_installed(tmp_path)
    monkeypatch.setattr(model_mod, "_input_file", _no_work)
    assert model_is_installed(tmp_path)
    assert install_model(tmp_path, onnx=False) == folder


def test_install_redoes_an_incomplete_folder(tmp_path, monkeypatch):
    _fake_installed(tmp_path, size=2)  # truncated file: not complete

    def missing(spec):
        raise ModelInstallError("package missing")

    monkeypatch.setattr(model_mod, "_input_file", missing)
    assert not model_is_installed(tmp_path)
    with pytest.raises(ModelInstallError, match="package missing"):
        install_model(tmp_path, onnx=False)


def test_install_reports_a_missing_package(tmp_path, monkeypatch):
    monkeypatch.setattr(model_mod, "DIST_NAMES", {**model_mod.DIST_NAMES, "no_such_pkg_xyz": "no-such-pkg"})
    monkeypatch.setattr(model_mod, "IMAGE", ("no_such_pkg_xyz", "1.0", "model.bin", "0" * 64))
    with pytest.raises(ModelInstallError, match="no-such-pkg==1.0 is not installed"):
        install_model(tmp_path, onnx=False)
    assert list(tmp_path.iterdir()) == []  # nothing half-written


@pytest.mark.parametrize("backend,query_backend,expected", [
    ("onnx", "auto", "onnx-int8"), ("torch-bf16", "auto", "onnx-int8"), ("torch", "auto", "torch"),
    ("onnx", "same", "onnx"), ("onnx", "torch", "torch"), ("hashing", "auto", "hashing"),
])
def test_query_backend_auto_picks_int8_only_when_the_export_exists(tmp_path, backend, query_backend, expected):
    folder = _fake_installed(tmp_path)
    (folder / "onnx").mkdir()
    (folder / model_mod.ONNX_INT8).write_bytes(b"onnx")
    assert resolve_query_backend(DEFAULT_MODEL, backend, query_backend, tmp_path) == expected
    (folder / model_mod.ONNX_INT8).unlink()
    no_int8 = backend if query_backend in ("auto", "same") else query_backend
    assert resolve_query_backend(DEFAULT_MODEL, backend, query_backend, tmp_path) == no_int8
