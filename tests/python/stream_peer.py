"""An independent peer for streamed messages: the Python `websockets` package.

Usage: stream_peer.py URL MIB [deflate] [text]

Connects (offering permessage-deflate with `deflate`), sends a message of MIB MiB in 1 MiB
fragments (text with `text`, else binary; the bytes are a fixed pseudo-random pattern that
compresses a little), reads the echo, compares SHA-256 digests, then does the same with a
short message (so that the compression context must carry over from a streamed message).
Prints "ok MIB MiB sha256=..." and exits 0 when every echo matches, 1 otherwise.
"""

import asyncio
import hashlib
import sys

from websockets.asyncio.client import connect
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory

MIB = 1 << 20


def fragment(i, text):
    # Printable ASCII for text (so every fragment is valid UTF-8 on its own), any byte else.
    base = bytes((i * 31 + j * 7) % 251 for j in range(4096))
    if text:
        base = bytes(32 + b % 95 for b in base)
    data = base * (MIB // 4096)
    return data.decode("ascii") if text else data


async def main():
    url, mib = sys.argv[1], int(sys.argv[2])
    deflate = "deflate" in sys.argv[3:]
    text = "text" in sys.argv[3:]
    extensions = [ClientPerMessageDeflateFactory(client_max_window_bits=True)] if deflate else None
    async with connect(
        url, extensions=extensions, compression=None, max_size=None, ping_interval=None
    ) as ws:
        agreed = ws.response.headers.get("Sec-WebSocket-Extensions")
        if deflate and not (agreed or "").startswith("permessage-deflate"):
            print(f"permessage-deflate not agreed: {agreed!r}")
            return 1
        sent = hashlib.sha256()

        async def fragments():
            for i in range(mib):
                piece = fragment(i, text)
                sent.update(piece.encode() if text else piece)
                yield piece

        sender = asyncio.create_task(ws.send(fragments()))
        got = hashlib.sha256()
        size = 0
        async for piece in ws.recv_streaming():
            data = piece.encode() if isinstance(piece, str) else piece
            got.update(data)
            size += len(data)
        await sender
        if size != mib * MIB or got.hexdigest() != sent.hexdigest():
            print(f"echo differs: {size} bytes, {got.hexdigest()} != {sent.hexdigest()}")
            return 1
        short = "after the stream" if text else b"after the stream"
        await ws.send(short)
        if await ws.recv() != short:
            print("the message after the streamed one differs")
            return 1
        print(f"ok {mib} MiB sha256={got.hexdigest()[:16]}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
