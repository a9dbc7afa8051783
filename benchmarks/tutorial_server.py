"""The reference: a broadcast chat server as most people would write it from the asyncio docs.

Every line a client sends goes to every other connected client, each recipient written to and
drained in turn. Nothing clever on purpose: the benchmark reports every server as a ratio to this.

    python benchmarks/tutorial_server.py PORT
"""

from __future__ import annotations

import asyncio
import sys

clients: set[asyncio.StreamWriter] = set()


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    clients.add(writer)
    try:
        while line := await reader.readline():
            for other in list(clients):
                if other is not writer:
                    try:
                        other.write(line)
                        await other.drain()
                    except ConnectionError:
                        clients.discard(other)
    except ConnectionError:
        pass
    finally:
        clients.discard(writer)
        writer.close()


async def main(port: int) -> None:
    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
