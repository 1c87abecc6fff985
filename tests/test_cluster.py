"""The loopback cluster (scripts/cluster.sh: PostgreSQL + 3 replicas + nginx) end to end, and the load run of
bench/cluster_load.py through it: no failed request while a replica is killed and the index is swapped."""

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from assist.index.store import build_index
from bench.cluster_load import Plan, count_feedback_rows, run_cluster_load
from bench.load import load_bodies
from scripts.cluster import Cluster, nginx_binary
from tests.conftest import CHUNKING, FAKE_ENV, ROOT, TINY_KB

pytestmark = pytest.mark.live

CLUSTER_SH = ROOT / "scripts" / "cluster.sh"
POLL = 2.0


@dataclass
class Running:
    cluster: Cluster  # the same class scripts/cluster.sh drives, reading the folder's cluster.json
    kb: Path
    env: dict[str, str]  # the environment scripts/cluster.sh ran with


def _logs(cluster: Cluster) -> str:
    """The replicas' last log lines, for a failure message."""
    return "\n".join(cluster.replica_log(i).read_text(errors="replace")[-3000:] for i in range(cluster.n))


def _sh(command: str, folder: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(CLUSTER_SH), command, str(folder)], env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def running(embedder):
    """A cluster started by `scripts/cluster.sh up` on a hashing-embedder index in a temp folder; stopped at the end."""
    if not list(Path("/usr/lib/postgresql").glob("*/bin/initdb")):
        pytest.skip("PostgreSQL is not installed: run make install (Debian package postgresql)")
    if not nginx_binary():
        pytest.skip("nginx is not installed: run make install (Debian package nginx)")
    root = Path(tempfile.mkdtemp(prefix="assist-cluster-test-"))  # not under pytest's 0700 dirs: the user postgres enters it
    os.chmod(root, 0o755)
    kb = root / "kb"
    shutil.copytree(TINY_KB, kb)
    build_index(kb, root / "index", embedder, chunking=CHUNKING)
    env = {**FAKE_ENV, "ASSIST_INDEX_DIR": str(root / "index"), "ASSIST_INDEX_POLL_SECONDS": str(POLL)}
    full_env = {k: v for k, v in os.environ.items() if k not in ("ASSIST_API_KEYS", "ASSIST_ADMIN_TOKEN", "ASSIST_DATABASE_URL")}
    full_env.update(env)
    folder = root / "cluster"
    try:
        up = _sh("up", folder, full_env)
        assert up.returncode == 0, up.stdout + up.stderr
        c = Cluster(folder, env=env)
        assert c.url in up.stdout and len(c.replica_ports) == 3
        yield Running(c, kb, full_env)
    finally:
        _sh("down", folder, full_env)
        Cluster(folder).down()  # whatever a failed `down` left (by pid files); a no-op otherwise
        shutil.rmtree(root, ignore_errors=True)


def test_cluster_sh_starts_every_part_with_its_files_in_the_folder(running):
    cluster = running.cluster
    status = _sh("status", cluster.dir, running.env)
    assert status.returncode == 0, status.stdout + status.stderr
    lines = status.stdout.splitlines()
    assert lines[0].startswith("postgresql: running") and cluster.database_url in lines[0]
    first = (cluster.index_dir / "CURRENT").read_text().strip()
    replicas = [x for x in lines if x.startswith("replica ")]
    assert len(replicas) == 3 and all(" alive " in x and x.endswith(f"index_version {first}") for x in replicas), status.stdout
    assert lines[-1].startswith("nginx: pid ") and " alive " in lines[-1]
    for secret in ("store.key", "credentials.env"):
        assert (cluster.dir / secret).stat().st_mode & 0o777 == 0o600
    conf = (cluster.dir / "nginx.conf").read_text()
    assert "proxy_next_upstream error timeout http_502 http_503 http_504 non_idempotent;" in conf
    assert str(cluster.dir / "nginx.pid") in conf and "/var/log" not in conf
    again = _sh("up", cluster.dir, running.env)  # idempotent: nothing new starts
    assert again.returncode == 0 and [cluster.replica_pid(i) for i in range(3)] == [int(x.split()[3]) for x in replicas]


def test_load_through_nginx_survives_a_killed_replica_and_an_index_swap(running, embedder):
    cluster = running.cluster

    def publish() -> str:
        return build_index(running.kb, cluster.index_dir, embedder, chunking=CHUNKING).version

    plan = Plan(requests=5000, concurrency=16, max_seconds=150)
    f = run_cluster_load(cluster, load_bodies(ROOT / "evals" / "queries.jsonl"), publish, plan, progress=lambda _: None)
    assert f["failed"] == 0 and f["requests"] >= 5000, (f["failures"], f["failure_samples"], _logs(cluster))
    fb = f["feedback"]
    assert fb["unique_event_ids"] > 100 and fb["resent"] > 20
    assert fb["db_rows"] == fb["db_distinct_event_ids"] == fb["unique_event_ids"], fb  # exactly once
    assert fb["resent_answered_not_duplicate"] == 0
    idx = f["index"]
    assert idx["new"] and idx["new"] not in idx["first"]
    assert idx["swap_seconds"] is not None and idx["swap_seconds"] <= POLL, idx  # every replica within the poll interval
    assert set(idx["served"]["after_swap"]) == {idx["new"]} and idx["served"]["before_publish"], idx["served"]
    kill = f["kill"]
    assert kill["restarted_pid"] != kill["killed_pid"] and kill["back_on"] == idx["new"]
    assert kill["requests_served_after_restart"] > 0, f["nginx"]
    assert all(f["targets"].values()), f["targets"]
    assert cluster.versions() == [idx["new"]] * 3
    assert count_feedback_rows(cluster.database_url, "no-such-run") == (0, 0)


def test_cluster_sh_down_stops_every_part(running):
    cluster = running.cluster
    pids = [cluster.replica_pid(i) for i in range(3)] + [cluster.nginx_pid()]
    down = _sh("down", cluster.dir, running.env)
    assert down.returncode == 0, down.stdout + down.stderr
    assert down.stdout.count(": stopped pid") == 4 and "stopped PostgreSQL" in down.stdout
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    status = _sh("status", cluster.dir, running.env)
    assert status.returncode == 3 and "postgresql: stopped" in status.stdout


def test_up_without_an_index_says_how_to_build_one(tmp_path):
    out = subprocess.run(["bash", str(CLUSTER_SH), "up", str(tmp_path / "c")], capture_output=True, text=True,
                         env={**os.environ, "ASSIST_INDEX_DIR": str(tmp_path / "none")})
    assert out.returncode == 1 and "build an index first: assist index build --kb kb" in out.stderr
