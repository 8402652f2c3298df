#!/usr/bin/env python3
"""Writes the seed corpus: a handful of small well-formed inputs per fuzz target.

Run from anywhere: `python3 fuzz/seeds/make_seeds.py`. The files are committed; rerun after
changing an input format.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
KEY = bytes([0x37, 0xFA, 0x21, 0x3D])
HELLO_DEFLATED = bytes([0xF2, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00])  # RFC 7692 7.2.3.1


def frame(b0, payload, mask=True, key=KEY):
    out = bytearray([b0])
    m = 0x80 if mask else 0
    n = len(payload)
    if n <= 125:
        out.append(m | n)
    elif n <= 0xFFFF:
        out.append(m | 126)
        out += struct.pack(">H", n)
    else:
        out.append(m | 127)
        out += struct.pack(">Q", n)
    if mask:
        out += key
        out += bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    else:
        out += payload
    return bytes(out)


def write(target, name, data, root=HERE):
    d = os.path.join(root, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# decode: [flags, window bits, chunk seed, limits] + stream.
# flags: 1 client, 2 inflater, 4 accept unmasked, 8 no context takeover.
LIMITS = 0b1010  # 64 KiB frames, 1 MiB messages
write("decode", "masked_hello", bytes([0, 0, 0, LIMITS]) + frame(0x81, b"Hello"))
write("decode", "masked_hello_chunked", bytes([0, 0, 7, LIMITS]) + frame(0x81, b"Hello"))
write("decode", "unmasked_hello_client", bytes([1, 0, 3, LIMITS]) + frame(0x81, b"Hello", mask=False))
write("decode", "ping_pong_close", bytes([0, 0, 5, LIMITS]) + frame(0x89, b"Hello")
      + frame(0x8A, b"Hello") + frame(0x88, b"\x03\xe8bye"))
write("decode", "fragments", bytes([0, 0, 9, LIMITS]) + frame(0x01, b"Hel") + frame(0x89, b"")
      + frame(0x80, "lo é".encode()))
write("decode", "deflate_hello", bytes([2, 7, 2, LIMITS]) + frame(0xC1, HELLO_DEFLATED))
write("decode", "deflate_hello_client", bytes([3, 7, 11, LIMITS])
      + frame(0xC1, HELLO_DEFLATED, mask=False))
write("decode", "deflate_fragmented", bytes([2 | 8, 7, 13, LIMITS]) + frame(0x41, HELLO_DEFLATED[:3])
      + frame(0x80, HELLO_DEFLATED[3:]))
write("decode", "binary_256", bytes([0, 0, 17, LIMITS]) + frame(0x82, bytes(range(256))))

# handshake: HTTP/1.1 text (an input starting with an uppercase letter), or `arbitrary` soup.
CRLF = "\r\n"


def request(lines):
    return (CRLF.join(lines) + CRLF + CRLF).encode()


VALID = ["GET /chat HTTP/1.1", "Host: example.com", "Upgrade: websocket",
         "Connection: keep-alive, Upgrade", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
         "Sec-WebSocket-Version: 13"]
write("handshake", "rfc6455_request", request(VALID))
write("handshake", "with_origin_protocol_deflate", request(VALID + [
    "Origin: http://example.com", "Sec-WebSocket-Protocol: chat, superchat",
    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"]))
write("handshake", "bad_key", request(VALID[:4] + ["Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZR==",
                                                  "Sec-WebSocket-Version: 13"]))
# Two Sec-WebSocket-Version fields ("13" and "8") are in fuzz/regressions/handshake/.
write("handshake", "h2_connect", request(["CONNECT /chat HTTP/2", "Host: example.com",
                                          "Sec-WebSocket-Version: 13"]))
write("handshake", "arbitrary_zeros", bytes(64))
write("handshake", "arbitrary_counting", bytes(range(1, 256)))

# negotiate: byte 0 = 0, then [flags, server bits, client bits, level, threshold, 0] and one
# Sec-WebSocket-Extensions field per line; any other byte 0 is `arbitrary` soup.
def offers(name, policy, *fields):
    write("negotiate", name, bytes([0]) + bytes(policy) + b"\n".join(fields))


DEFAULT = [0, 15, 15, 1, 64, 0]
offers("client_max_window_bits", DEFAULT, b"permessage-deflate; client_max_window_bits")
offers("server_bits_nct", DEFAULT,
       b"permessage-deflate; server_max_window_bits=10; client_no_context_takeover")
offers("eight_then_plain", DEFAULT, b"permessage-deflate; server_max_window_bits=8, permessage-deflate")
offers("quoted_two_fields", [3, 12, 9, 6, 0, 0], b"x-webkit-deflate-frame",
       b"permessage-deflate; client_max_window_bits=\"12\"")
offers("out_of_range_policy", [0, 255, 0, 200, 0, 0], b"permessage-deflate; client_max_window_bits")
write("negotiate", "arbitrary_zeros", bytes([1]) + bytes(48))
write("negotiate", "arbitrary_counting", bytes(range(1, 120)))

# inflate: byte 0 = 0, then [bits, flags, limit u16 LE] and frames (header 0x80 FIN | 0x40
# release | length, then the bytes); any other byte 0 is `arbitrary` soup.
def frames(*fs):
    out = b""
    for fin, data in fs:
        out += bytes([(0x80 if fin else 0) | len(data)]) + data
    return out


write("inflate", "rfc7692_hello", bytes([0, 7, 1, 0, 1]) + frames((True, HELLO_DEFLATED)))
write("inflate", "rfc7692_hello_split", bytes([0, 7, 0, 5, 0]) + frames((False, HELLO_DEFLATED[:2]),
                                                                     (True, HELLO_DEFLATED[2:])))
write("inflate", "rfc7692_hello_twice_takeover", bytes([0, 7, 0, 0, 1])
      + frames((True, HELLO_DEFLATED), (True, bytes([0xF2, 0x00, 0x11, 0x00, 0x00]))))
write("inflate", "arbitrary_round_trip", bytes([1, 1, 0, 0, 0]) + b"Hello, hello, hello" * 4)
write("inflate", "arbitrary_counting", bytes(range(1, 200)))

# socket: [flags, sizes, times, more] + steps (see socket.rs `Harness::step`).
# flags: 1 client, 2 deflate, 4 vectored, 8 keepalive, 0x20 attached to a hub, 0x40 no takeover.
# sizes: write_buffer_size idx (bits 0-1), max_write idx (2-3), read buf (4), limit idx (5-6).
NEXT, FEED, SEND, CLOSE, FLUSH, CANCEL, ADVANCE, SPLIT, REUNITE, REPOLL, SETTLE = \
    14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24
READ_CHUNK, APP_PING, RECV_LOOP = 25, 26, 27
PUBLISH, DRAIN = 28, 29
RAW, TEXT, BINARY, FLOOD, PEER_CLOSE, BAD, PONG, EOF = 0, 1, 2, 3, 4, 5, 6, 7
BLOCK_READ, UNBLOCK_READ, CREDIT, UNLIMITED, BLOCK_WRITE, BROKEN = 8, 9, 10, 11, 12, 13
SIZES = 0b0_10_0_01_01  # wbuf 64, max 256, limit 4096
TIMES = 0x12  # close timeout 3 s, keepalive 2 s


def socket(name, flags, steps, sizes=SIZES):
    write("socket", name, bytes([flags, sizes, TIMES, 0x75]) + bytes(steps))


def raw(data):
    return [RAW, len(data)] + list(data)


socket("masked_hello", 0, raw(frame(0x81, b"Hello")) + [NEXT, NEXT, SETTLE])
socket("text_echo", 0, [TEXT, 40, 0, 3, 0x11, NEXT, FEED, 0, 5, 20, 0, FLUSH, NEXT, SETTLE])
socket("ping_flood_no_reader", 0, [BLOCK_WRITE, FLOOD, 60, 120, RECV_LOOP, 70, SETTLE])
socket("ping_flood_split", 0, [SPLIT, 1, BLOCK_WRITE, FLOOD, 60, 120, RECV_LOOP, 70, SEND, 1, 1, 0, 1,
                               CREDIT, 0, 2, SETTLE, REUNITE])
socket("peer_close", 0, [PEER_CLOSE, 1, 4, NEXT, NEXT, NEXT, SETTLE])
socket("app_close_timeout", 0, [CLOSE, 0, 1, 0, ADVANCE, 12, SETTLE, NEXT, SETTLE])
socket("send_close_then_recv", 0, [SEND, 0, 1, 10, 0, CLOSE, 2, 1, 3, NEXT, ADVANCE, 13, SETTLE])
socket("split_crate", 0, [SPLIT, 0, NEXT, FEED, 1, 2, 0, 4, BLOCK_WRITE, SEND, 1, 3, 0, 16,
                          CREDIT, 0, 1, SETTLE, TEXT, 5, 0, 1, 0, SETTLE, REUNITE])
socket("split_futures", 0, [SPLIT, 1, NEXT, BLOCK_WRITE, FLOOD, 2, 10, REPOLL, 1,
                            SEND, 1, 3, 0, 16, CREDIT, 0, 4, SETTLE, REUNITE])
socket("client_deflate", 1 | 2, [TEXT, 200, 0, 1, 0x20, NEXT, SEND, 0, 9, 0, 2, NEXT, SETTLE])
socket("server_deflate_keepalive", 2 | 4 | 8, [ADVANCE, 8, SETTLE, NEXT, ADVANCE, 8, SETTLE,
                                                PONG, 3, SETTLE])
socket("bad_frame", 0, [BAD, 6, NEXT, NEXT, SETTLE])
# The write half waits on a blocked write; the read half's pong write then takes the IO's write
# waker; the IO becomes writable: both halves must be woken (lost with futures' split before
# the socket fanned its wakers out).
for kind, split in [("crate", 0), ("futures", 1)]:
    socket(f"split_{kind}_write_wakeup", 0, [SPLIT, split, BLOCK_WRITE, SEND, 1, 0, 0, 4, FLOOD, 0, 5,
                                              RECV_LOOP, 1, UNLIMITED, SETTLE])


# Attached to a hub (flag 0x20), subscribed to the topic PUBLISH publishes to; DRAIN runs the
# runtime's tasks (the hub's drain). PUBLISH takes kind (bit 0 binary, bit 1 u16 size), seed,
# size (one byte, or two little-endian with bit 1).
HUB = 0x20


def publish(size, seed=1, binary=False):
    kind = (1 if binary else 0) | (2 if size > 255 else 0)
    return [PUBLISH, kind, seed] + (list(struct.pack("<H", size)) if size > 255 else [size])


# Published messages keep their place among the application's: A, P1, B, P2, P3.
socket("hub_publish_between_sends", HUB, [SEND, 2, 0, 5] + publish(5) + [SEND, 2, 2, 7]
       + publish(10, binary=True) + [DRAIN] + publish(300, 3, binary=True) + [NEXT, SETTLE])
# No application task polls: the drain alone writes, as the connection takes bytes.
socket("hub_drain_only", HUB, publish(40) + [DRAIN, BLOCK_WRITE] + publish(600, 2, True)
       + publish(9) + [DRAIN, CREDIT, 100, 0, DRAIN, CREDIT, 0, 2, ADVANCE, 2, UNLIMITED, DRAIN])
# Publishes wait in the hub while the queue is full; the application's message goes after them.
socket("hub_blocked_then_feed", HUB, [BLOCK_WRITE] + publish(300, 4, True) + publish(20) + [DRAIN]
       + [FEED, 2, 5, 30] + publish(3) + [CREDIT, 50, 0, DRAIN, SEND, 0, 6, 0x10, 0x01, UNLIMITED,
                                         DRAIN, SETTLE])
# A message StreamExt::split's sink holds while Pending: publishes may go out before it.
socket("hub_futures_pending_send", HUB, [SPLIT, 1, BLOCK_WRITE, SEND, 1, 0, 0x2c, 0x01,
                                         SEND, 1, 1, 10, 0] + publish(20, 7) + [UNLIMITED, DRAIN,
                                         REPOLL, 0, SETTLE, REUNITE])
socket("hub_split_crate", HUB, [SPLIT, 0, NEXT] + publish(12) + [DRAIN, SEND, 1, 2, 0, 1]
       + [TEXT, 5, 0, 1, 0, SETTLE] + publish(70, 9, True) + [REUNITE, SETTLE])
# Publishes around a close: one not yet written may never be; nothing after the close frame.
socket("hub_close_after_publish", HUB, [BLOCK_WRITE] + publish(30) + [DRAIN] + publish(31)
       + [CLOSE, 2, 1, 3] + publish(32) + [UNLIMITED, DRAIN, SETTLE, NEXT, PEER_CLOSE, 1, 4, NEXT])
socket("hub_peer_close", HUB, publish(8) + [PEER_CLOSE, 1, 4] + publish(9) + [NEXT, DRAIN, NEXT,
                                                                              SETTLE])
# With permessage-deflate: the client masks and compresses each delivery with its own context;
# a server with context takeover compresses it itself; without, it shares one compressed frame.
for name, flags in [("client", 1 | 2), ("server_takeover", 2), ("server_no_takeover", 2 | 0x40)]:
    socket(f"hub_deflate_{name}", HUB | flags, [TEXT, 200, 0, 1, 0x20, NEXT] + publish(200, 5)
           + [SEND, 0, 9, 0, 2] + publish(400, 6) + [DRAIN, NEXT, SETTLE])


# Crashes found on the code of their time, written out readably: fuzz/regressions/<target>/.
# .ci/fuzz.sh replays every file there; each must pass once its cause is fixed. The socket
# inputs saved as found (the splitsink_* files not written below) had their opcode bytes
# rewritten to the same steps (b % 28) when the opcode modulus went from 28 to 30 (the hub's
# steps): a byte of 28 or more would now be another step.
REGRESSIONS = os.path.join(os.path.dirname(HERE), "regressions")


def regression(target, name, data):
    write(target, name, data, root=REGRESSIONS)


# Two Sec-WebSocket-Version fields, "13" and "8": not a version 13 request (RFC 6455 4.1).
regression("handshake", "duplicate_version_13_and_8", request(VALID + ["Sec-WebSocket-Version: 8"]))

# StreamExt::split's sink returns Pending holding a message it has not handed over (the socket's
# queue is over the high-water mark); reuniting drops it, so it never goes out and the next
# message comes in its place. The finding was harness bookkeeping (it kept expecting it).
regression("socket", "splitsink_reunite_drops_pending_item",
           bytes([0, SIZES, TIMES, 0x75]) + bytes([SPLIT, 1, BLOCK_WRITE, SEND, 1, 0, 0x2c, 0x01,
                                                    SEND, 1, 1, 10, 0, REUNITE, UNLIMITED,
                                                    SEND, 2, 0, 5, SETTLE]))
# The same message, then Sink::poll_close on the sink: it hands the message over first, which
# waits for room with no deadline (no close is queued yet), so the close timeout does not run.
# Harness bookkeeping too (it started the close deadline).
regression("socket", "splitsink_pending_item_delays_close",
           bytes([0, 0x75, 0x45, 2]) + bytes([SPLIT, 1, BLOCK_WRITE, SEND, 1, 0, 0x2c, 0x01,
                                               SEND, 1, 1, 0x0a, 0x23, CLOSE, 0, 0x1d, 7,
                                               ADVANCE, 11, REPOLL, 0, SETTLE]))

# The write half sends a close frame (`send(Message::Close)`), the peer never answers: the
# read half, already waiting in next(), must end with CloseTimeout after close_timeout (1 s).
for kind, split in [("crate", 0), ("futures", 1)]:
    regression("socket", f"close_timer_wakes_read_half_{kind}",
               bytes([0, SIZES, 0x10, 0x75]) + bytes([SPLIT, split, NEXT, CLOSE, 2, 1, 0, ADVANCE, 8, SETTLE]))

