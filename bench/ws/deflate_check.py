#!/usr/bin/env python3
"""Checks bb-ws-bench's permessage-deflate path (RFC 7692) against a scripted server on loopback.

Not a test of the agent and not in CI: it proves that the client inflates what a server
compresses with Python's zlib (raw DEFLATE, Z_SYNC_FLUSH, 00 00 ff ff stripped, RSV1 set), reuses
a cached inflation only for byte-identical copies, and counts a bad frame where it should, in
three modes: the server compresses each message once for every client (server_no_context_takeover),
keeps one compressor per client (context takeover), or declines the offer.

    bench/ws/deflate_check.py BB_WS_BENCH     (e.g. build/bin/bb-ws-bench)

Every client gets: a welcome (uncompressed), a ping with RSV1 set (a bad frame), in the shared mode
a compressed frame that does not inflate (a bad frame), a message that inflates to exactly the
client's first output buffer, two compressed messages whose cache keys are equal and bytes differ, a compressed snapshot, then UPDATES
updates 100 ms apart (compressed, every fourth a small uncompressed one) once all clients are in.
"""
import asyncio
import base64
import hashlib
import json
import re
import subprocess
import sys
import time
import zlib

CLIENTS = 20
UPDATES = 12
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def frame(payload: bytes, opcode=0x1, rsv1=False) -> bytes:
    b0 = 0x80 | (0x40 if rsv1 else 0) | opcode
    n = len(payload)
    if n < 126:
        head = bytes([b0, n])
    elif n < 65536:
        head = bytes([b0, 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([b0, 127]) + n.to_bytes(8, "big")
    return head + payload


def deflate(text: bytes, comp=None) -> bytes:
    comp = comp or zlib.compressobj(6, zlib.DEFLATED, -15)
    out = comp.compress(text) + comp.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


def stored(text: bytes) -> bytes:
    """One non-final stored DEFLATE block (BTYPE 00) holding `text` as it is."""
    return b"\x00" + len(text).to_bytes(2, "little") + (len(text) ^ 0xFFFF).to_bytes(2, "little") + text


def notice(tag: bytes) -> bytes:
    return b'{"type":"notice","data":"' + b"x" * 100 + tag + b"y" * 500 + b'"}'


def message(kind, stream, seq, size):
    data = {"rows": [{"i": i, "v": (i * 7919) % 1000, "name": f"peer-{i % 37}"}
                     for i in range(size)]}
    return json.dumps({"type": kind, "stream": stream, "data": data, "seq": seq,
                       "timestamp": int(time.time() * 1000)}, separators=(",", ":")).encode()


async def serve(mode):
    """mode: shared (server_no_context_takeover), context (one compressor each), declined."""
    writers, all_in = [], asyncio.Event()

    async def client(reader, writer):
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        key = re.search(r"(?i)sec-websocket-key: *(\S+)", head).group(1)
        offered = re.search(r"(?i)sec-websocket-extensions: *permessage-deflate", head)
        accept = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
        ext = ""
        if offered and mode == "shared":
            ext = ("Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; "
                   "client_no_context_takeover\r\n")
        elif offered and mode == "context":
            ext = "sec-websocket-extensions: permessage-deflate\r\n"  # header name in lower case
        writer.write(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: "
                      f"Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n{ext}\r\n").encode())
        writer.write(frame(b'{"type":"welcome","stream":null,"data":{},"seq":null,"timestamp":0}'))
        writer.write(frame(b"hi", opcode=0x9, rsv1=True))
        writers.append((writer, zlib.compressobj(6, zlib.DEFLATED, -15) if ext else None))
        if len(writers) == CLIENTS:
            all_in.set()
        try:
            while await reader.read(65536):
                pass
        except ConnectionError:
            pass

    server = await asyncio.start_server(client, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    bench = await asyncio.create_subprocess_exec(
        sys.argv[1], "--port", str(port), "--clients", str(CLIENTS), "--seconds", "4",
        "--ramp", "5", "--deflate", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    await asyncio.wait_for(all_in.wait(), 10)
    await asyncio.sleep(0.5)  # the client starts its window once all are upgraded

    def send(text, compress=True):
        shared = deflate(text)  # compressed once, the same bytes to every client
        for w, comp in writers:
            if comp is None or not compress:
                w.write(frame(text))
            else:
                w.write(frame(shared if mode == "shared" else deflate(text, comp), rsv1=True))

    if mode == "shared":
        for w, _ in writers:
            w.write(frame(b"\x07not deflate at all\xff" * 3, rsv1=True))
        # In stored (uncompressed) DEFLATE blocks: a message of exactly 64 KiB, the client's
        # first output buffer; then two of one size that differ only where the cache key samples
        # no byte: the second is a mismatch, inflated on its own.
        big = b'{"type":"notice","data":"' + b"z" * (65536 - 27) + b'"}'
        for text in (big, notice(b"A"), notice(b"B")):
            for w, _ in writers:
                w.write(frame(stored(text[:40000]) + stored(text[40000:]), rsv1=True))
    send(message("snapshot", "network", 1, 2000))
    for seq in range(2, UPDATES + 2):
        small = seq % 4 == 0
        send(message("update", "network", seq, 3 if small else 1500 + seq), compress=not small)
        await asyncio.sleep(0.1)
    out, err = await bench.communicate()
    server.close()
    return bench.returncode, out.decode(), err.decode()


def field(out, name):
    m = re.search(name + r"=(\d+)", out)
    return int(m.group(1)) if m else None


def main():
    failures = 0
    compressed_sent = 1 + UPDATES - UPDATES // 4  # the snapshot and the big updates
    for mode in ("shared", "context", "declined"):
        rc, out, err = asyncio.run(serve(mode))
        negotiated = mode != "declined"
        expect = {
            "bad_frames": CLIENTS * (1 + (mode == "shared")),
            "messages": CLIENTS * (2 + UPDATES + 3 * (mode == "shared")),
            "seq_gaps": 0,
            "updates_distinct": UPDATES,
            "compressed messages": CLIENTS * (compressed_sent + 3 * (mode == "shared"))
            if negotiated else 0,
            # shared: each distinct message once, the bad frame and the mismatch for every client
            "inflations": {"shared": compressed_sent + 2 + 2 * CLIENTS,
                           "context": CLIENTS * compressed_sent, "declined": 0}[mode],
            "cache_hits": (CLIENTS - 1) * (compressed_sent + 2) if mode == "shared" else 0,
            "cache_mismatches": CLIENTS if mode == "shared" else 0,
        }
        got = {k: field(out, k) for k in expect}
        m = re.search(r"negotiated by (\d+) of (\d+)", out)
        got["negotiated"], expect["negotiated"] = m and int(m.group(1)), CLIENTS * negotiated
        m = re.search(r"per_delivery_ms: n=(\d+)", out)
        got["deliveries"], expect["deliveries"] = m and int(m.group(1)), CLIENTS * UPDATES
        bad = {k: (got[k], v) for k, v in expect.items() if got[k] != v}
        print(f"{mode}: {'ok' if not bad and rc == 0 else 'FAILED'} (exit {rc})")
        print("  " + "\n  ".join(line for line in out.splitlines()
                                 if line.startswith(("elapsed", "deflate", "window", "per_d"))))
        if bad or rc != 0:
            failures += 1
            print(f"  got, expected: {bad}\n{out}{err}")
    print(f"{3 - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
