"""The benchmark's load generator (benchmarks/loadgen.py, verify.py): a short real run against an embedded
server accounts for every delivery, and the accounting does fail on a duplicated, lost,
reordered, corrupted or echoed line. A benchmark whose checks cannot fail would let a fast
but wrong server win."""

from __future__ import annotations

import importlib
import random
import selectors
import socket
import ssl
import sys
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

import anychat

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
K = 3


def _bench(name: str) -> Any:
    """A module of benchmarks/ (scripts, not a package: they import each other by name)."""
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    return importlib.import_module(name)


def _irc_line(sender: int, seq: int, nick: bytes = b"b00000") -> bytes:
    token: bytes = _bench("verify").token(sender, seq, 12345)
    return b":" + nick + b"!" + nick + b"@anychat PRIVMSG #general :" + token + b"xxxx\r\n"


def _json_line(sender: int, seq: int, msg_id: int) -> bytes:
    token = _bench("verify").token(sender, seq, 12345).decode()
    return (
        f'{{"type":"message","id":{msg_id},"from":"b{sender}","to":"#general",'
        f'"text":"{token}xxxx","kind":"plain","history":false}}\n'
    ).encode()


def _growing_json_line(sender: int, seq: int) -> bytes:
    """JSON lines whose ids grow a digit midway: the generator's searching path."""
    return _json_line(sender, seq, 8 + 3 * seq + sender)


def _stream(line: Any, n: int = 4) -> list[bytes]:
    """``n`` messages from each of K senders, interleaved, each as one line."""
    return [line(s, q) for q in range(n) for s in range(K)]


def _problems(lines: list[bytes]) -> dict[str, int]:
    v = _bench("verify").Verifier([-1], K)
    v.feed(0, b"".join(lines))
    result: dict[str, int] = v.finish([4] * K)
    return result


@pytest.mark.parametrize(
    "line",
    [
        pytest.param(_irc_line, id="same-length-lines"),
        pytest.param(_growing_json_line, id="varying-lengths"),
    ],
)
def test_accounting_fails_on_every_kind_of_wrong_delivery(line: Any) -> None:
    good = _stream(line)
    assert _problems(good) == dict.fromkeys(
        ("lost", "duplicated", "reordered", "corrupt", "echoed"), 0
    )
    assert _problems([*good[:5], good[4], *good[5:]])["duplicated"] == 1
    assert _problems([*good[:5], *good[6:]])["lost"] == 1
    assert _problems(good[:-1])["lost"] == 1  # the last one never came
    swapped = [*good[:3], good[6], good[4], good[5], good[3], *good[7:]]
    assert _problems(swapped)["reordered"] == 1
    bad_digits = good[7].replace(b"00000002", b"0000x002")
    assert _problems([*good[:7], bad_digits, *good[8:]])["corrupt"] == 1
    v = _bench("verify").Verifier([1], K)  # this client is sender 1
    v.feed(0, b"".join(good))
    assert v.finish([4] * K)["echoed"] == 4


def test_accounting_spans_blocks() -> None:
    """Numbers run on from one check to the next, per client: a gap across blocks counts."""
    v = _bench("verify").Verifier([-1, -1], K)
    good = _stream(_irc_line)
    v.feed(0, b"".join(good[:6]))
    v.feed(1, b"".join(good[:9]))
    v.feed(0, b"".join(good[6:]))
    v.feed(1, b"".join(good[10:]))  # good[9] (sender 0, number 3) never reached client 1
    problems = v.finish([4] * K)
    assert problems["lost"] == 1 and problems["duplicated"] == 0
    assert v.seen.tolist() == [12, 11]


@pytest.mark.parametrize("protocol", ["irc", "jsonl", "websocket", "irc-tls", "jsonl-tls"])
async def test_short_run_against_an_embedded_server(protocol: str, tmp_path: Path) -> None:
    servers, loadgen = _bench("servers"), _bench("loadgen")
    adapter = servers.PROTOCOLS[protocol]
    options: dict[str, Any] = {}
    client_tls = None
    if adapter.tls:
        cert, key, ca_file = servers.make_certificate(tmp_path)
        options = {"tls_cert": str(cert), "tls_key": str(key)}
        client_tls = ssl.create_default_context(cafile=str(ca_file))
    async with anychat.serve(port=0, flood_rate=0, **options) as server:

        def run() -> Any:
            gen = loadgen.LoadGen(server.port, adapter, 6, 2, tls=client_tls)
            try:
                gen.connect(timeout=20)
                gen.barrier(timeout=20)
                # A second measured, not a quarter: on a loaded machine a quarter of a second
                # with no delivery in it happened (a stall of either side, not a lost message).
                m = gen.run(warmup=0.1, duration=1.0, window=32)
                # One more copy of a message the receiver already had must be caught.
                seen_before = gen.verifier.finish(gen.sent_of)
                line = _irc_line(0, 0) if protocol == "irc" else _json_line(0, 0, 10**6)
                gen.verifier.feed(gen.receiver.idx, line)
                return m, seen_before, gen.verifier.finish(gen.sent_of)
            finally:
                gen.close()

        with anyio.fail_after(60):
            m, before, after = await anyio.to_thread.run_sync(run)
    assert m.sent > 0 and m.deliveries > 0
    # Every message reached each of the other 5 clients, each checked once.
    assert m.checked == m.sent * 5
    assert m.received == m.expected
    assert not any(m.problems.values()), m.problems
    assert not any(before.values())
    assert after["duplicated"] == 1


def _server_handshake(
    conn: socket.socket, context: ssl.SSLContext
) -> tuple[ssl.SSLObject, ssl.MemoryBIO]:
    """The server's side of a handshake over memory BIOs: its session and outgoing BIO."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_side=True)
    while True:
        try:
            tls.do_handshake()
            break
        except ssl.SSLWantReadError:
            conn.sendall(outgoing.read())
            incoming.write(conn.recv(1 << 16))
    conn.sendall(outgoing.read())
    return tls, outgoing


def _tls_pair(tmp_path: Path, serve: Any, *args: Any) -> tuple[Any, socket.socket, Any]:
    """A server thread running ``serve(listener, context, *args)`` and the generator's TLS
    client connected to it (handshake done, socket non-blocking): (client, socket, thread)."""
    servers, tlsclient = _bench("servers"), _bench("tlsclient")
    cert, key, ca_file = servers.make_certificate(tmp_path)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    thread = threading.Thread(target=serve, args=(listener, server_context, *args))
    thread.start()
    sock = socket.create_connection(listener.getsockname()[:2], timeout=10)
    client = tlsclient.TlsClient(
        sock,
        ssl.create_default_context(cafile=str(ca_file)),
        memoryview(bytearray(1 << 17)),
        "localhost",
    )
    client.handshake()
    sock.setblocking(False)
    return client, sock, thread


def _serve_tls_stream(
    listener: socket.socket, context: ssl.SSLContext, payload: bytes, done: threading.Event
) -> None:
    """One TLS connection that sends ``payload`` in records of assorted sizes, its ciphertext
    cut at odd points, then stays open until ``done`` (so that the end of the stream is not
    what wakes the client) and closes without a close_notify."""
    with listener:
        conn, _ = listener.accept()
    with conn:
        tls, outgoing = _server_handshake(conn, context)
        sizes = [1, 100, 16384, 40000, 7, 16385, 3000]
        at = 0
        while at < len(payload):
            size = sizes[at % len(sizes)]
            tls.write(payload[at : at + size])  # a write of more than 16 KiB is several records
            at += size
        cipher = outgoing.read()
        for cut in range(0, len(cipher), 5003):
            conn.sendall(cipher[cut : cut + 5003])
        done.wait(60)


async def test_generators_numbered_apart_share_a_server() -> None:
    """The idle rows connect in steps, one generator each: ``first`` keeps their nicks apart
    (the same nicks would be refused as taken, and the barrier would wait in vain)."""
    servers, loadgen = _bench("servers"), _bench("loadgen")
    adapter = servers.PROTOCOLS["irc"]
    async with anychat.serve(port=0, flood_rate=0) as server:

        def run() -> None:
            gens = [loadgen.LoadGen(server.port, adapter, 3, 1, first=n) for n in (0, 3)]
            try:
                for gen in gens:
                    gen.connect(timeout=20)  # a nick taken would get 433, never the welcome
                for gen in gens:
                    gen.barrier(timeout=20)  # and each one's room message reaches its others
            finally:
                for gen in gens:
                    gen.close()

        with anyio.fail_after(60):
            await anyio.to_thread.run_sync(run)


def test_tls_client_hands_over_every_byte_however_the_records_arrive(tmp_path: Path) -> None:
    """The generator's TLS client, woken by the selector only, with the smallest buffer it
    takes: every byte of a stream of whole, partial and many records per receive arrives in
    order, nothing stays inside the SSL object where the selector cannot see it, and the end of
    the connection reads as 0."""
    room = memoryview(bytearray(_bench("tlsclient").MIN_ROOM))
    payload = random.Random(7).randbytes(1_500_000)
    done = threading.Event()
    client, sock, server = _tls_pair(tmp_path, _serve_tls_stream, payload, done)
    selector = selectors.DefaultSelector()
    try:
        selector.register(sock, selectors.EVENT_READ)
        got = bytearray()
        deadline = time.monotonic() + 20
        while len(got) < len(payload):
            assert time.monotonic() < deadline, f"stuck at {len(got)} of {len(payload)}"
            if not selector.select(1.0):
                continue
            try:
                n = client.recv_into(room)
            except (BlockingIOError, ssl.SSLWantReadError):
                continue
            assert n > 0, f"the stream ended at {len(got)} of {len(payload)}"
            got += room[:n]
        assert got == payload
        done.set()
        while True:
            selector.select(10)
            try:
                assert client.recv_into(room) == 0
                break
            except (BlockingIOError, ssl.SSLWantReadError):
                continue
    finally:
        done.set()
        selector.close()
        sock.close()
        server.join(10)


def _serve_split_record(
    listener: socket.socket,
    context: ssl.SSLContext,
    steps: list[threading.Event],
    sent: list[bytes],
) -> None:
    """A record and half of the next; once the client has read the first (``steps[0]``), the
    rest of that record and whole ones, just under a full buffer of ciphertext in all, then
    ``steps[1]``. The client's next receive starts with half a record inside its SSL object."""
    with listener:
        conn, _ = listener.accept()
    with conn:
        tls, outgoing = _server_handshake(conn, context)
        room = _bench("tlsclient").MIN_ROOM
        tls.write(b"a" * 16384)
        tls.write(b"b" * 16384)
        sent += [b"a" * 16384, b"b" * 16384]
        first = outgoing.read()
        half = len(first) - 8000
        conn.sendall(first[:half])
        steps[0].wait(30)
        rest = first[half:]
        letter = ord("c")
        while len(rest) < room - 4096:
            size = min(16384, room - 4096 - len(rest))
            tls.write(bytes([letter]) * size)
            sent.append(bytes([letter]) * size)
            rest += outgoing.read()
            letter += 1
        assert len(rest) <= room
        conn.sendall(rest)
        steps[1].set()
        steps[2].wait(30)


def test_tls_client_never_decrypts_more_than_the_buffer_holds(tmp_path: Path) -> None:
    """A receive that starts with half a record inside the SSL object, and a socket holding
    just under a buffer's worth of ciphertext: together they decrypt to more than the buffer
    holds, so the receive must leave some in the socket (where the selector sees it), not in
    the SSL object (where it would wait for data that never comes)."""
    room = memoryview(bytearray(_bench("tlsclient").MIN_ROOM))
    steps = [threading.Event() for _ in range(3)]
    sent: list[bytes] = []
    client, sock, server = _tls_pair(tmp_path, _serve_split_record, steps, sent)
    selector = selectors.DefaultSelector()
    try:
        selector.register(sock, selectors.EVENT_READ)
        got = bytearray()
        while len(got) < 16384 or client.incoming.pending:  # the first record, then half one
            selector.select(10)
            try:
                got += room[: client.recv_into(room)]
            except (BlockingIOError, ssl.SSLWantReadError):
                continue
        assert got == b"a" * 16384
        steps[0].set()
        assert steps[1].wait(30)  # all of it is in the socket now (loopback)
        while selector.select(0):
            try:
                got += room[: client.recv_into(room)]
            except (BlockingIOError, ssl.SSLWantReadError):
                pass
        assert got == b"".join(sent)
    finally:
        for step in steps:
            step.set()
        selector.close()
        sock.close()
        server.join(10)


def test_websocket_frames_become_lines_wherever_a_receive_ends() -> None:
    """Server frames cut at every byte: the bulk splitter gives each payload once, as a line,
    including lengths whose header bytes look like a frame start (129 = 0x0081) or a newline."""
    from anychat.codecs.web.frames import text_frame

    ws = _bench("wsframes")
    # Lengths: short, the largest short, the smallest medium, 0x0081, 0x010A, short again.
    lengths = [20, 125, 126, 129, 266, 19]
    payloads = []
    for i, length in enumerate(lengths):
        head = b'{"n":%d,"p":"' % i
        payloads.append(head + b"y" * (length - len(head) - 2) + b'"}')
    assert [len(p) for p in payloads] == lengths
    stream = b"".join(text_frame(p) for p in payloads)
    want = b"".join(p + b"\n" for p in payloads)
    for cut in range(len(stream) + 1):
        for cut2 in (cut, min(len(stream), cut + 2), min(len(stream), cut + 131)):
            got, frag = b"", b""
            for piece in (stream[:cut], stream[cut:cut2], stream[cut2:]):
                lines, frag = ws.split(frag + piece)
                got += lines
            assert (got, frag) == (want, b""), (cut, cut2)


def test_websocket_client_frames_are_masked_and_parse() -> None:
    """The generator's frames, read by wsproto's server side: masked, and the payloads intact."""
    from wsproto.frame_protocol import FrameProtocol

    ws = _bench("wsframes")
    payloads = [b'{"type":"say","text":"^A%08dxx"}' % i for i in range(50)]
    data = ws.client_frames(payloads) + ws.client_frames_of_lines(b'{"a":1}\n{"b":22}\n')
    assert all(p not in data for p in payloads[1:])  # masked (a zero key would leave them)
    parser = FrameProtocol(client=False, extensions=[])
    parser.receive_bytes(data)
    texts = [f.payload for f in parser.received_frames()]
    assert all(isinstance(t, str) for t in texts)  # text frames
    assert [str(t).encode() for t in texts] == [
        *payloads,
        b'{"a":1}',
        b'{"b":22}',
    ]
