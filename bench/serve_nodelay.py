"""`assist serve` with the listening socket marked IPPROTO_TCP, so `--workers N` keeps TCP_NODELAY.

    python bench/serve_nodelay.py serve --workers 2 ...   (same arguments as `assist serve`)

Benchmark-only stand-in for a fix that belongs in `assist serve`: uvicorn 0.54's multi-worker path
binds the socket itself with proto 0; accepted sockets inherit it, asyncio then skips TCP_NODELAY, and
every keep-alive request after the first waits ~40 ms for the client's delayed ACK (uvicorn issue
#3149, open). `--workers 1` is unaffected (asyncio binds with proto 6 there). bench/qps.py measures
2 workers both as shipped and through this launcher.
"""

import socket
import sys

import uvicorn.config

_bind = uvicorn.config.Config.bind_socket


def bind_socket(self) -> socket.socket:
    sock = _bind(self)
    if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.proto == 0:
        # Same descriptor, re-described as TCP: accepted connections inherit proto 6 and get TCP_NODELAY.
        sock = socket.socket(sock.family, socket.SOCK_STREAM, socket.IPPROTO_TCP, fileno=sock.detach())
        sock.set_inheritable(True)
    return sock


uvicorn.config.Config.bind_socket = bind_socket

if __name__ == "__main__":
    from assist.cli import app

    sys.argv[0] = "assist"
    app()
