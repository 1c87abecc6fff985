"""A loopback cluster for trying replicas: PostgreSQL + N `assist serve` replicas + nginx as the load balancer.

    .venv/bin/python scripts/cluster.py up|down|status [DIR]      (or bash scripts/cluster.sh ..., make cluster)

Everything lives in DIR (default .assist/cluster): the PostgreSQL cluster (pg/, started by scripts/pg.sh),
one log and pid file per replica, nginx.conf with its logs, pid and temp folders, the store key (store.key)
and the generated credentials (credentials.env), both mode 600, and cluster.json (ports, URLs; no secrets).
The replicas serve ASSIST_INDEX_DIR (default .assist/index) and follow its CURRENT every
ASSIST_INDEX_POLL_SECONDS (default 2). `down` stops each part by its pid file only.

The `Cluster` class is what bench/cluster_load.py and tests/test_cluster.py drive, so the script is tested.
"""

import argparse
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from api.server import free_port  # noqa: E402

BIN = Path(sys.executable).parent
PG_SH = ROOT / "scripts" / "pg.sh"
DEFAULT_DIR = ROOT / ".assist" / "cluster"


class ClusterError(Exception):
    """A part of the cluster failed to start or stop; the message says which and shows its log."""


def _tail(path: Path, lines: int = 25) -> str:
    if not path.is_file():
        return f"(no log at {path})"
    text = path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
    return f"--- last lines of {path}:\n" + "\n".join(text)


def _write_secret(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(path, 0o600)  # an existing file keeps its mode through O_CREAT


def _read_env_file(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        key, sep, value = line.partition("=")
        if sep and not key.startswith("#"):
            out[key.strip()] = value.strip()
    return out


def _pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _alive(pid: int | None, word: str) -> bool:
    """The process exists, is not a zombie and its command line contains `word` (a recycled pid is not ours)."""
    if not pid:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z" and word in cmdline


def nginx_binary() -> str | None:
    return shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


def nginx_conf(folder: Path, port: int, replica_ports: list[int]) -> str:
    """nginx.conf for the balancer: every path inside `folder`, retries on another replica for any failed try
    (POSTs too: feedback carries an event_id, so a retried one is stored once), keep-alive to the replicas."""
    servers = "\n".join(f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=2s;" for p in replica_ports)
    tmp = folder / "nginx-tmp"
    return f"""# written by scripts/cluster.py; regenerated on every `up`
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/nginx-error.log warn;

events {{
    worker_connections 1024;
}}

http {{
    # "|"-separated: $upstream_addr lists every replica tried ("a, b") when nginx retried on another one
    log_format upstream '$msec|$status|$request_method|$uri|$upstream_addr|$upstream_status|$request_time';
    access_log {folder}/nginx-access.log upstream;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    client_max_body_size 1m;

    upstream assist {{
{servers}
        keepalive 32;
    }}

    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://assist;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_connect_timeout 1s;
            proxy_read_timeout 30s;
            proxy_next_upstream error timeout http_502 http_503 http_504 non_idempotent;
            proxy_next_upstream_tries 3;
        }}
    }}
}}
"""


class Cluster:
    """PostgreSQL + `replicas` x `assist serve` + nginx, all with their files in `folder`.

    `env` adds settings for the replicas (e.g. the hashing embedder in tests) on top of os.environ."""

    def __init__(self, folder: Path = DEFAULT_DIR, *, index_dir: Path | None = None, replicas: int = 3,
                 env: dict[str, str] | None = None, poll_seconds: float | None = None, port: int | None = None):
        self.dir = Path(folder).resolve()
        self.env = dict(env or {})
        merged = {**os.environ, **self.env}
        self.index_dir = Path(index_dir or merged.get("ASSIST_INDEX_DIR") or ROOT / ".assist" / "index").resolve()
        self.poll_seconds = float(poll_seconds if poll_seconds is not None else merged.get("ASSIST_INDEX_POLL_SECONDS", 2))
        self.n = replicas
        self.port = port or (int(merged["ASSIST_CLUSTER_PORT"]) if merged.get("ASSIST_CLUSTER_PORT") else None)
        self.database_url = ""
        self.replica_ports: list[int] = []
        self._children: dict[int, subprocess.Popen] = {}
        self._load_state()

    # --- files ---------------------------------------------------------------------------------------

    @property
    def state_file(self) -> Path:
        return self.dir / "cluster.json"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def replica_urls(self) -> list[str]:
        return [f"http://127.0.0.1:{p}" for p in self.replica_ports]

    @property
    def access_log(self) -> Path:
        return self.dir / "nginx-access.log"

    def replica_log(self, i: int) -> Path:
        return self.dir / f"replica-{i}.log"

    def _replica_pidfile(self, i: int) -> Path:
        return self.dir / f"replica-{i}.pid"

    def _load_state(self) -> None:
        if self.state_file.is_file():
            state = json.loads(self.state_file.read_text(encoding="utf-8"))
            self.database_url = state["database_url"]
            self.replica_ports = state["replica_ports"]
            self.port = self.port or state["port"]
            self.index_dir = Path(state["index_dir"])
            self.poll_seconds = state["poll_seconds"]
            self.n = len(self.replica_ports)

    def _save_state(self) -> None:
        state = {"url": self.url, "port": self.port, "replica_ports": self.replica_ports, "database_url": self.database_url,
                 "index_dir": str(self.index_dir), "poll_seconds": self.poll_seconds}
        self.state_file.write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")

    def credentials(self) -> dict[str, str]:
        """ASSIST_API_KEYS and ASSIST_ADMIN_TOKEN: from the environment when given, else DIR/credentials.env
        (generated on the first `up`)."""
        merged = {**os.environ, **self.env}
        if merged.get("ASSIST_API_KEYS"):
            return {"ASSIST_API_KEYS": merged["ASSIST_API_KEYS"], "ASSIST_ADMIN_TOKEN": merged.get("ASSIST_ADMIN_TOKEN", "")}
        path = self.dir / "credentials.env"
        if not path.is_file():
            creds = {"ASSIST_API_KEYS": "agent-" + secrets.token_urlsafe(24), "ASSIST_ADMIN_TOKEN": "admin-" + secrets.token_urlsafe(24)}
            _write_secret(path, "".join(f"{k}={v}\n" for k, v in creds.items()))
        return _read_env_file(path)

    @property
    def api_key(self) -> str:
        return self.credentials()["ASSIST_API_KEYS"].split(",")[0].strip()

    @property
    def admin_token(self) -> str:
        return self.credentials()["ASSIST_ADMIN_TOKEN"]

    def store_key(self) -> str:
        """The cluster's ASSIST_STORE_KEY, kept in DIR/store.key: taken from the environment or generated on the first `up`."""
        path = self.dir / "store.key"
        if not path.is_file():
            from assist.crypto import new_key

            _write_secret(path, ({**os.environ, **self.env}.get("ASSIST_STORE_KEY") or new_key()) + "\n")
        return path.read_text(encoding="utf-8").strip()

    def replica_env(self) -> dict[str, str]:
        env = {**os.environ, **self.env, **self.credentials()}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # one process per replica: no shared metrics folder
        env.update({
            "OMP_NUM_THREADS": "1",
            "ASSIST_DEV_MODE": "0",
            "ASSIST_DATABASE_URL": self.database_url,
            "ASSIST_STORE_KEY": self.store_key(),
            "ASSIST_INDEX_DIR": str(self.index_dir),
            "ASSIST_INDEX_POLL_SECONDS": str(self.poll_seconds),
        })
        return env

    # --- parts ---------------------------------------------------------------------------------------

    def up(self, timeout: float = 240) -> str:
        """Start every part that is not running; the balancer's URL."""
        if not (self.index_dir / "CURRENT").is_file():
            raise ClusterError(f"no index in {self.index_dir} (no CURRENT): build an index first: assist index build --kb kb")
        if not nginx_binary():
            raise ClusterError("nginx is not installed: run make install (Debian package nginx)")
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o755)  # PostgreSQL (user postgres when root) and nginx's workers enter it
        self.start_postgres()
        self.upgrade_db()
        if len(self.replica_ports) != self.n:
            self.replica_ports = [free_port() for _ in range(self.n)]
        self.port = self.port or free_port()
        self._save_state()
        started = [i for i in range(self.n) if not self.replica_alive(i)]
        for i in started:
            self.start_replica(i)
        for i in started:
            self.wait_ready(i, timeout)
        self.start_nginx()
        return self.url

    def start_postgres(self) -> None:
        out = subprocess.run(["bash", str(PG_SH), "start", str(self.dir / "pg")], capture_output=True, text=True)
        if out.returncode != 0:
            raise ClusterError(f"PostgreSQL did not start:\n{out.stderr.strip()}")
        self.database_url = out.stdout.strip().splitlines()[-1]

    def upgrade_db(self) -> None:
        out = subprocess.run([str(BIN / "assist"), "db", "upgrade"], env=self.replica_env(), cwd=self.dir, capture_output=True, text=True)
        if out.returncode != 0:
            raise ClusterError(f"assist db upgrade failed on {self.database_url}:\n{(out.stdout + out.stderr).strip()}")

    def replica_pid(self, i: int) -> int | None:
        return _pid(self._replica_pidfile(i))

    def replica_alive(self, i: int) -> bool:
        pid = self.replica_pid(i)
        child = self._children.get(i)
        if child is not None and child.pid == pid:
            return child.poll() is None
        return _alive(pid, "assist")

    def start_replica(self, i: int) -> int:
        """Start replica `i` on its port in its own session (it outlives `cluster.py up`); its pid."""
        cmd = [str(BIN / "assist"), "serve", "--host", "127.0.0.1", "--port", str(self.replica_ports[i]), "--workers", "1", "--no-access-log"]
        with open(self.replica_log(i), "ab") as log:
            log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(cmd[1:])}\n".encode())
            log.flush()
            proc = subprocess.Popen(cmd, env=self.replica_env(), cwd=self.dir, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        self._children[i] = proc
        self._replica_pidfile(i).write_text(f"{proc.pid}\n")
        return proc.pid

    def wait_ready(self, i: int, timeout: float = 240) -> str:
        """Wait until replica `i` answers /readyz 200; the index version it serves."""
        deadline = time.monotonic() + timeout
        url = self.replica_urls[i] + "/readyz"
        while True:
            if not self.replica_alive(i):
                raise ClusterError(f"replica {i} (port {self.replica_ports[i]}) exited while starting\n{_tail(self.replica_log(i))}")
            try:
                r = httpx.get(url, timeout=2)
                if r.status_code == 200:
                    return r.json()["index_version"]
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise ClusterError(f"replica {i} not ready on {url} after {timeout:.0f} s\n{_tail(self.replica_log(i))}")
            time.sleep(0.2)

    def kill_replica(self, i: int) -> None:
        """SIGKILL replica `i` (a crash: no graceful shutdown)."""
        pid = self.replica_pid(i)
        if self.replica_alive(i):
            os.kill(pid, signal.SIGKILL)
        child = self._children.pop(i, None)
        if child is not None:
            child.wait()

    def restart_replica(self, i: int, timeout: float = 240) -> str:
        """Start replica `i` again on the same port; the version it serves once ready."""
        self.start_replica(i)
        return self.wait_ready(i, timeout)

    def nginx_pid(self) -> int | None:
        return _pid(self.dir / "nginx.pid")

    def nginx_alive(self) -> bool:
        return _alive(self.nginx_pid(), "nginx")

    def start_nginx(self, timeout: float = 15) -> None:
        if self.nginx_alive():
            return
        conf = self.dir / "nginx.conf"
        for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (self.dir / "nginx-tmp" / sub).mkdir(parents=True, exist_ok=True)
        conf.write_text(nginx_conf(self.dir, self.port, self.replica_ports), encoding="utf-8")
        # -e: the startup error log too is ours (not /var/log/nginx); -p: relative paths resolve in DIR.
        base = [nginx_binary(), "-p", f"{self.dir}/", "-c", str(conf), "-e", str(self.dir / "nginx-error.log")]
        test = subprocess.run([*base, "-t"], capture_output=True, text=True)
        if test.returncode != 0:
            raise ClusterError(f"nginx rejects {conf}:\n{test.stderr.strip()}")
        out = subprocess.run(base, capture_output=True, text=True)  # daemonises; the master writes nginx.pid
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.nginx_alive() and httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if out.returncode != 0 or time.monotonic() > deadline:
                raise ClusterError(f"nginx did not start on {self.url}: {out.stderr.strip()}\n{_tail(self.dir / 'nginx-error.log')}")
            time.sleep(0.1)

    def versions(self) -> list[str | None]:
        """The index version each replica reports in /readyz (None when it does not answer 200)."""
        return [r["index_version"] if r else None for r in self.readiness()]

    def readiness(self) -> list[dict | None]:
        """Each replica's /readyz body (index_version, serving_since), None when it does not answer 200."""
        out = []
        for url in self.replica_urls:
            try:
                r = httpx.get(url + "/readyz", timeout=2)
                out.append(r.json() if r.status_code == 200 else None)
            except httpx.HTTPError:
                out.append(None)
        return out

    def down(self) -> list[str]:
        """Stop nginx, the replicas and PostgreSQL, each by its pid file; what was done."""
        done = []
        pid = self.nginx_pid()
        if self.nginx_alive():
            os.kill(pid, signal.SIGQUIT)  # graceful: finish the requests in flight
            if not self._wait_gone(lambda: self.nginx_alive(), 15):
                os.kill(pid, signal.SIGTERM)
            done.append(f"nginx: stopped pid {pid}")
        for i in range(len(self.replica_ports)):
            pid = self.replica_pid(i)
            if self.replica_alive(i):
                os.kill(pid, signal.SIGTERM)
                if not self._wait_gone(lambda i=i: self.replica_alive(i), 20):
                    os.kill(pid, signal.SIGKILL)
                    self._wait_gone(lambda i=i: self.replica_alive(i), 5)
                done.append(f"replica {i}: stopped pid {pid}")
            self._children.pop(i, None)
            self._replica_pidfile(i).unlink(missing_ok=True)
        self.state_file.unlink(missing_ok=True)  # the next `up` picks free ports again
        if (self.dir / "pg").is_dir():
            out = subprocess.run(["bash", str(PG_SH), "stop", str(self.dir / "pg")], capture_output=True, text=True)
            done.append((out.stdout + out.stderr).strip())
        return done

    @staticmethod
    def _wait_gone(alive, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while alive():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True

    def status(self) -> list[str]:
        """One line per part: pid, alive, and each replica's index version."""
        pg = subprocess.run(["bash", str(PG_SH), "status", str(self.dir / "pg")], capture_output=True, text=True)
        lines = [f"postgresql: {pg.stdout.strip() or pg.stderr.strip()}"]
        versions = self.versions() if self.replica_ports else []
        for i, port in enumerate(self.replica_ports):
            alive = "alive" if self.replica_alive(i) else "not running"
            lines.append(f"replica {i}: pid {self.replica_pid(i)} {alive} http://127.0.0.1:{port} index_version {versions[i] or '-'}")
        alive = "alive" if self.nginx_alive() else "not running"
        lines.append(f"nginx: pid {self.nginx_pid()} {alive} {self.url if self.port else ''}".rstrip())
        return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("up", "down", "status"))
    parser.add_argument("dir", nargs="?", type=Path, default=DEFAULT_DIR, help="the cluster's folder (default .assist/cluster)")
    args = parser.parse_args(argv)
    cluster = Cluster(args.dir)
    try:
        if args.command == "up":
            url = cluster.up()
            print(f"cluster up: {url}  ({cluster.n} replicas behind nginx, PostgreSQL {cluster.database_url}, index {cluster.index_dir})")
            creds = "from your environment" if os.environ.get("ASSIST_API_KEYS") else f"in {cluster.dir / 'credentials.env'}"
            print(f"  API key and admin token {creds}; try: curl {url}/readyz")
            print(f"  logs in {cluster.dir}; stop: bash scripts/cluster.sh down {args.dir}")
        elif args.command == "down":
            for line in cluster.down() or ["nothing was running"]:
                print(line)
        else:
            lines = cluster.status()
            print("\n".join(lines))
            return 0 if all(" alive" in x for x in lines[1:]) else 3
    except ClusterError as exc:
        print(f"cluster {args.command}: {exc}", file=sys.stderr)
        if args.command == "up":
            print(f"what did start keeps running; stop it with: bash scripts/cluster.sh down {args.dir}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
