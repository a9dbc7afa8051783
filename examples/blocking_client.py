"""Chat with nothing but the stdlib socket module and anychat's sans-IO codec.

Proof that the protocol layer does no I/O of its own: this script drives
:class:`anychat.codecs.jsonl.JsonClientCodec` with a blocking socket, no event loop anywhere.
Run: ``python examples/blocking_client.py 'hello from a plain socket' [host] [port]``.
"""

from __future__ import annotations

import socket
import sys

from anychat import model
from anychat.codecs.jsonl import JsonClientCodec
from anychat.safetext import safe_text


def say_once(host: str, port: int, text: str, nick: str = "blocky") -> model.Ack:
    codec = JsonClientCodec()
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(codec.encode(model.Hello(nick=nick, ref="hello")))
        sock.sendall(codec.encode(model.Say(target="#general", text=text, ref="say")))
        while True:  # read, feed, act on events: the whole sans-IO loop
            data = sock.recv(65536)
            if not data:
                raise ConnectionError("server closed the connection")
            for event in codec.feed(data):
                if isinstance(event, model.Error):
                    raise RuntimeError(f"server refused: {safe_text(event.text)}")
                if isinstance(event, model.Ack) and event.ref == "say":
                    sock.sendall(codec.encode(model.Quit()))
                    return event


if __name__ == "__main__":
    host = sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1"
    port = int(sys.argv[3]) if len(sys.argv) > 3 else 3000
    ack = say_once(host, port, sys.argv[1] if len(sys.argv) > 1 else "hello")
    print(f"sent message {ack.id}")
