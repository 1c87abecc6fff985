"""Run the API with uvicorn: one process, or several sharing one listening socket.

With several workers uvicorn binds the socket itself without naming the protocol (proto 0). Accepted
connections inherit that, asyncio then skips TCP_NODELAY on them, and every keep-alive request after
the first waits ~40 ms for the client's delayed ACK (uvicorn 0.54, issue #3149). So the socket is
bound here and re-described as TCP before the workers start; one worker (asyncio binds) is unaffected.

Several workers also share their Prometheus metrics through files (api/metrics.py): in
PROMETHEUS_MULTIPROC_DIR when the operator sets it (emptied at start), else in a temporary folder
removed at exit.
"""

import os
import shutil
import socket
import tempfile
from contextlib import contextmanager
from pathlib import Path

import uvicorn
from uvicorn.supervisors import Multiprocess

APP = "api.main:create_app"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on `host` right now (tests and benchmarks start servers on it)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def tcp_socket(sock: socket.socket) -> socket.socket:
    """The same listening descriptor, described as IPPROTO_TCP so accepted sockets get TCP_NODELAY."""
    if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.proto == 0:
        sock = socket.socket(sock.family, socket.SOCK_STREAM, socket.IPPROTO_TCP, fileno=sock.detach())
        sock.set_inheritable(True)  # the worker processes receive it
    return sock


def run(host: str, port: int, workers: int, log_level: str, access_log: bool) -> None:
    config = uvicorn.Config(APP, factory=True, host=host, port=port, workers=workers, log_level=log_level,
                            access_log=access_log, timeout_graceful_shutdown=10)
    if workers == 1:
        server = uvicorn.Server(config)
        try:
            server.run()
        except KeyboardInterrupt:
            pass
        if not server.started:
            raise SystemExit(3)  # uvicorn's STARTUP_FAILURE; the reason is already logged
        return
    with metrics_folder():
        try:
            Multiprocess(config, sockets=[tcp_socket(config.bind_socket())]).run()
        except KeyboardInterrupt:
            pass


@contextmanager
def metrics_folder():
    """PROMETHEUS_MULTIPROC_DIR for the workers about to start (they inherit the environment), emptied
    of an earlier run's files: old counts would be added to the new ones."""
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    folder = Path(given) if given else Path(tempfile.mkdtemp(prefix="assist-metrics-"))
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):
        stale.unlink()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
    try:
        yield folder
    finally:
        if not given:
            shutil.rmtree(folder, ignore_errors=True)
            del os.environ["PROMETHEUS_MULTIPROC_DIR"]
