import contextlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from api.server import free_port
from assist.config import ChunkSettings, get_settings
from assist.crypto import Cipher
from assist.index.embed import HashingEmbedder
from assist.index.store import build_index, load_index

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data"
TINY_KB = DATA / "kb"
# Small chunks so the tiny KB still exercises section splitting.
CHUNKING = ChunkSettings(size=120, overlap=10)
# A fixed key for ASSIST_STORE_KEY in tests (servers outside development mode refuse to start without one).
STORE_KEY = "l4lH8lWjT6E0m0vY1wKQ4bEJmQvT4u9bB2qXxQe6c5Y="
TEST_CIPHER = Cipher(STORE_KEY)


@pytest.fixture(scope="session")
def embedder():
    return HashingEmbedder(dim=256)


@pytest.fixture
def kb_copy(tmp_path) -> Path:
    """A writable copy of the tiny KB."""
    dest = tmp_path / "kb"
    shutil.copytree(TINY_KB, dest)
    return dest


@pytest.fixture(scope="session")
def tiny_index(tmp_path_factory, embedder):
    """The tiny KB indexed once per session with the fake embedder."""
    index_dir = tmp_path_factory.mktemp("index")
    build_index(TINY_KB, index_dir, embedder, chunking=CHUNKING)
    return load_index(index_dir, embedder)


# The hashing fake gives lower cosines than a real model: thresholds scaled to it.
FAKE_ENV = {
    "ASSIST_EMBEDDING__BACKEND": "hashing",
    "ASSIST_CHUNKING__SIZE": str(CHUNKING.size),
    "ASSIST_CHUNKING__OVERLAP": str(CHUNKING.overlap),
    "ASSIST_SUGGEST__INTENT_OOS_THRESHOLD": "0.25",
    "ASSIST_SUGGEST__ABSTAIN_MIN_DENSE": "0.15",
    "ASSIST_SUGGEST__ABSTAIN_MIN_DENSE_OOS": "0.3",
    "ASSIST_STORE_KEY": STORE_KEY,
}


@pytest.fixture
def fake_env(monkeypatch, tmp_path):
    """Settings for CLI tests: the fake embedder, its thresholds, an index folder in tmp_path."""
    for key, value in FAKE_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("ASSIST_INDEX_DIR", str(tmp_path / "idx"))
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


@pytest.fixture
def store_key_env(monkeypatch):
    """ASSIST_STORE_KEY set to the tests' key, for CLI commands reading a store written with TEST_CIPHER."""
    monkeypatch.setenv("ASSIST_STORE_KEY", STORE_KEY)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@contextlib.contextmanager
def index_dir_env(index_dir: Path):
    """The real settings with ASSIST_INDEX_DIR pointing at `index_dir` (eval indexes and caches go beside
    it), for module-scoped fixtures of the slow suite; the settings cache is cleared on entry and exit."""
    mp = pytest.MonkeyPatch()
    mp.setenv("ASSIST_INDEX_DIR", str(index_dir))
    get_settings.cache_clear()
    try:
        yield get_settings()
    finally:
        mp.undo()
        get_settings.cache_clear()


@contextlib.contextmanager
def live_server(tmp: Path, env: dict[str, str], timeout: float = 60, workers: int = 1, access_log: bool = False):
    """A real `assist serve` (uvicorn) on 127.0.0.1 with the fake settings plus `env`; yields its URL
    once /readyz answers 200 and stops it afterwards. The log is tmp/server.log."""
    import httpx

    port = free_port()
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", "ASSIST_DEV_MODE": "0", **FAKE_ENV, **env}
    log = tmp / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "assist"), "serve", "--host", "127.0.0.1", "--port", str(port),
             "--access-log" if access_log else "--no-access-log", "--workers", str(workers)],
            env=full_env, cwd=tmp, stdout=out, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"assist serve exited with {proc.returncode}:\n{log.read_text()}")
            try:
                if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"assist serve not ready after {timeout:.0f} s:\n{log.read_text()}")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
