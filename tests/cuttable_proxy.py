"""A TCP proxy in front of an API server that a test can cut (every open connection closed, new
ones refused) and restore on the same port: the API server unreachable, watches cut, as a client
sees a network outage."""

import asyncio
import contextlib
from urllib.parse import urlsplit


class CuttableProxy:
    def __init__(self, target_url):
        parts = urlsplit(target_url)
        self.target = (parts.hostname, parts.port)
        self.port = None
        self._server = None
        self._writers = set()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    async def _pipe(self, reader, writer):
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def _serve(self, client_reader, client_writer):
        upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        self._writers |= {client_writer, upstream_writer}
        await asyncio.gather(
            self._pipe(client_reader, upstream_writer), self._pipe(upstream_reader, client_writer)
        )
        self._writers -= {client_writer, upstream_writer}

    async def start(self):
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port or 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self):
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        await self._server.wait_closed()

    async def restore(self):
        await self.start()
