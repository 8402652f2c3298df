"""An independent permessage-deflate peer: the Python `websockets` package.

Usage: deflate_peer.py URL [server_no_context_takeover] [client_no_context_takeover]
                          [server_max_window_bits=N] [client_max_window_bits=N]

Connects offering permessage-deflate with exactly those parameters, checks that the server
accepted it, sends text and binary messages (repeated, so context takeover matters; small
and large), checks every echo, closes cleanly, and prints the agreed extension header.
Exit status 0 on success, 1 on any mismatch.
"""

import asyncio
import random
import sys

from websockets.asyncio.client import connect
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory


def parse(args):
    opts = {}
    for arg in args:
        if "=" in arg:
            name, value = arg.split("=", 1)
            opts[name] = int(value)
        else:
            opts[arg] = True
    return opts


def messages():
    rng = random.Random(7)
    text = "".join(rng.choice("WebSocket compression ✓ ") for _ in range(20_000))
    noise = bytes(rng.getrandbits(8) for _ in range(5_000))
    return [
        "hello",
        text,
        text,  # the same again: with context takeover this compresses to almost nothing
        text[::-1],
        b"\x00" * 200_000,
        noise,
        "",
        "short but over the threshold of sixty-four bytes, repeated: " * 3,
    ]


async def main():
    url = sys.argv[1]
    opts = parse(sys.argv[2:])
    factory = ClientPerMessageDeflateFactory(
        server_no_context_takeover=opts.get("server_no_context_takeover", False),
        client_no_context_takeover=opts.get("client_no_context_takeover", False),
        server_max_window_bits=opts.get("server_max_window_bits"),
        client_max_window_bits=opts.get("client_max_window_bits", True),
    )
    async with connect(url, extensions=[factory], max_size=16 * 2**20, compression=None) as ws:
        agreed = ws.response.headers.get("Sec-WebSocket-Extensions")
        if not agreed or not agreed.startswith("permessage-deflate"):
            print(f"permessage-deflate not agreed: {agreed!r}")
            return 1
        for round_ in range(2):
            for msg in messages():
                await ws.send(msg)
                echo = await ws.recv()
                if echo != msg:
                    print(f"round {round_}: echo differs for a {type(msg).__name__} of {len(msg)}")
                    return 1
        print(agreed)
    return 0


sys.exit(asyncio.run(main()))
