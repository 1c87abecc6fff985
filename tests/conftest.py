import shutil
from pathlib import Path

import pytest

from assist.config import ChunkSettings
from assist.index.embed import HashingEmbedder
from assist.index.store import build_index, load_index

DATA = Path(__file__).parent / "data"
TINY_KB = DATA / "kb"
# Small chunks so the tiny KB still exercises section splitting.
CHUNKING = ChunkSettings(size=120, overlap=10)


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
