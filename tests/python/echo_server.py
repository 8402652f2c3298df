"""An echo server on the Python `websockets` package, for the client interop tests.

usage: echo_server.py MODE [CERT KEY]   (MODE: none | deflate | deflate-limits | tls)

Prints the port it listens on (127.0.0.1), then echoes every message until stdin closes.
"""

import asyncio
import ssl
import sys

from websockets.asyncio.server import serve
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory


async def echo(ws):
    async for message in ws:
        await ws.send(message)


async def main(mode):
    if mode == "none":
        kwargs = {"compression": None}
    elif mode == "deflate":
        kwargs = {"compression": "deflate"}
    elif mode == "deflate-limits":
        # No context takeover either way, and the client's window limited to 10 bits.
        kwargs = {
            "extensions": [
                ServerPerMessageDeflateFactory(
                    server_no_context_takeover=True,
                    client_no_context_takeover=True,
                    client_max_window_bits=10,
                )
            ],
            "compression": None,
        }
    elif mode == "tls":
        # TLS with the certificate and key (PEM) given after the mode, with compression.
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(sys.argv[2], sys.argv[3])
        kwargs = {"ssl": context, "compression": "deflate"}
    else:
        raise SystemExit(f"unknown mode {mode}")
    async with serve(echo, "127.0.0.1", 0, max_size=None, **kwargs) as server:
        print(server.sockets[0].getsockname()[1], flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)


asyncio.run(main(sys.argv[1]))
