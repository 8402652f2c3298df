"""Memory per idle connection of a running echo server, with and without permessage-deflate.

    cargo build --release --example echo
    python3 benches/idle_memory.py --echo target/release/examples/echo --conns 5000

For each mode it starts a fresh `echo --deflate` server, opens N connections (offering
permessage-deflate with the mode's parameters), sends one compressible text message on each
(40 KiB by default: more than a 15-bit window, so windows are full) and checks the echo; then it
lets the connections idle, waits for the server's RSS to settle and reports
(RSS after - RSS before) / N. Kernel socket buffers are not in RSS. Loopback only.

glibc keeps freed memory mapped, so plain RSS reports the high-water mark; run with
`MALLOC_MMAP_THRESHOLD_=32768` to have large blocks unmapped when freed and see what an idle
connection actually keeps.
"""

import argparse
import asyncio
import base64
import os
import resource
import subprocess
import zlib

MODES = {
    "no-deflate": None,
    "deflate, context takeover": "permessage-deflate; client_max_window_bits",
    "deflate, no context takeover": "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
    "deflate, takeover, 9-bit windows": "permessage-deflate; server_max_window_bits=9; client_max_window_bits=9",
}

MESSAGE = b""  # set from --message-kib


def rss(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def frame(payload, rsv1):
    # An all-zero masking key keeps this script cheap; RFC 6455 allows any key value.
    head = bytes([0xC1 if rsv1 else 0x81])
    n = len(payload)
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head += bytes([0x80 | 127]) + n.to_bytes(8, "big")
    return head + b"\0\0\0\0" + payload


async def read_frame(reader):
    b0, b1 = await reader.readexactly(2)
    n = b1 & 0x7F
    if n == 126:
        n = int.from_bytes(await reader.readexactly(2), "big")
    elif n == 127:
        n = int.from_bytes(await reader.readexactly(8), "big")
    return b0, await reader.readexactly(n)


async def open_conn(host, port, offer):
    reader, writer = await asyncio.open_connection(host, port)
    key = base64.b64encode(os.urandom(16)).decode()
    ext = f"Sec-WebSocket-Extensions: {offer}\r\n" if offer else ""
    writer.write(
        (
            f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
            f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n{ext}\r\n"
        ).encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head
    agreed = b"permessage-deflate" in head.lower()
    assert agreed == bool(offer), head
    if agreed:
        c = zlib.compressobj(wbits=-9 if "=9" in offer else -15)
        payload = c.compress(MESSAGE) + c.flush(zlib.Z_SYNC_FLUSH)
        writer.write(frame(payload[:-4], True))
    else:
        writer.write(frame(MESSAGE, False))
    b0, data = await read_frame(reader)
    if b0 & 0x40:
        data = zlib.decompressobj(wbits=-15).decompress(data + b"\x00\x00\xff\xff")
    assert data == MESSAGE, "echo differs"
    return writer


async def settle(pid):
    last = rss(pid)
    for _ in range(20):
        await asyncio.sleep(0.5)
        now = rss(pid)
        if abs(now - last) < 64 * 1024:
            return now
        last = now
    return last


async def measure(host, port, pid, conns, offer, idle):
    warm = [await open_conn(host, port, offer) for _ in range(64)]
    for w in warm:
        w.close()
    await asyncio.sleep(0.5)
    before = await settle(pid)
    writers = []
    sem = asyncio.Semaphore(256)

    async def one():
        async with sem:
            writers.append(await open_conn(host, port, offer))

    await asyncio.gather(*(one() for _ in range(conns)))
    # Idle long enough for the server to release compression state (1 s after the last message).
    await asyncio.sleep(idle)
    after = await settle(pid)
    for w in writers:
        w.close()
    await asyncio.sleep(1)
    return (after - before) / conns


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--echo", default="target/release/examples/echo")
    p.add_argument("--addr", default="127.0.0.1:9002")
    p.add_argument("--conns", type=int, default=5000)
    p.add_argument("--idle", type=float, default=3.0, help="seconds idle before measuring")
    p.add_argument("--message-kib", type=int, default=40, help="size of the one message each way")
    args = p.parse_args()
    global MESSAGE
    words = [b"idle", b"connection", b"memory", b"probe", b"window", b"deflate", b"context"]
    MESSAGE = b" ".join(words[(i * 7 + i // 5) % len(words)] for i in range(args.message_kib * 160))
    MESSAGE = MESSAGE[: args.message_kib * 1024]
    host, port = args.addr.rsplit(":", 1)
    assert host.startswith("127."), "loopback only"
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, args.conns + 1024), hard))
    print(f"| mode | bytes per idle connection ({args.conns} connections) |")
    print("|---|---|")
    for name, offer in MODES.items():
        server = subprocess.Popen(
            [args.echo, "--addr", args.addr, "--deflate"], stdout=subprocess.PIPE, text=True
        )
        try:
            server.stdout.readline()  # "listening on ..."
            per = await measure(host, int(port), server.pid, args.conns, offer, args.idle)
        finally:
            server.terminate()
            server.wait()
        print(f"| {name} | {per / 1024:.1f} KiB |", flush=True)


asyncio.run(main())
