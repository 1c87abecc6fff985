"""The multi-worker listening socket: accepted connections must get TCP_NODELAY (api/server.py)."""

import asyncio
import socket

import uvicorn

from api.server import tcp_socket


def nodelay_of_accepted(listen: socket.socket) -> int:
    """TCP_NODELAY of the server side of one connection accepted by asyncio on `listen`."""

    async def main() -> int:
        accepted: asyncio.Future = asyncio.get_running_loop().create_future()

        class Proto(asyncio.Protocol):
            def connection_made(self, transport):
                sock = transport.get_extra_info("socket")
                accepted.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                transport.close()

        server = await asyncio.get_running_loop().create_server(Proto, sock=listen)
        port = listen.getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        value = await asyncio.wait_for(accepted, 5)
        writer.close()
        server.close()
        await server.wait_closed()
        return value

    return asyncio.run(main())


def uvicorn_socket() -> socket.socket:
    """The socket uvicorn's multi-worker path binds (proto 0)."""
    return uvicorn.Config("api.main:create_app", host="127.0.0.1", port=0, workers=2).bind_socket()


def test_uvicorn_multi_worker_socket_loses_nodelay_and_tcp_socket_restores_it():
    plain = uvicorn_socket()
    assert plain.proto == 0
    assert nodelay_of_accepted(plain) == 0  # the delayed-ACK stall this module works around

    fixed = tcp_socket(uvicorn_socket())
    assert fixed.proto == socket.IPPROTO_TCP and fixed.get_inheritable()
    assert nodelay_of_accepted(fixed) != 0
