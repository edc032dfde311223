"""A TCP proxy in front of the S3 test server that breaks a response off mid-body (test helper).

The first ``cuts`` server-to-client streams that pass ``cut_after`` bytes are cut there and
the connection closed, as a reset connection does to a download in flight.
"""

from __future__ import annotations

import asyncio
import threading


class CutProxy:
    def __init__(self, upstream_port: int, cut_after: int, cuts: int = 1) -> None:
        self.upstream_port = upstream_port
        self.cut_after = cut_after
        self.cuts_left = cuts
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        self._ready.wait(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = self.server.sockets[0].getsockname()[1]
        self._ready.set()
        self.loop.run_forever()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_r, up_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)

        async def to_server() -> None:
            while data := await reader.read(1 << 16):
                up_w.write(data)
                await up_w.drain()

        async def to_client() -> None:
            sent = 0
            while data := await up_r.read(1 << 16):
                if self.cuts_left > 0 and sent + len(data) > self.cut_after:
                    self.cuts_left -= 1
                    writer.write(data[:self.cut_after - sent])
                    await writer.drain()
                    return
                sent += len(data)
                writer.write(data)
                await writer.drain()

        pipes = [asyncio.ensure_future(to_server()), asyncio.ensure_future(to_client())]
        try:
            await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for p in pipes:
                p.cancel()
            await asyncio.gather(*pipes, return_exceptions=True)
            for w in (writer, up_w):
                w.close()

    def stop(self) -> None:
        async def shutdown() -> None:
            self.server.close()
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in others:
                t.cancel()
            await asyncio.gather(*others, return_exceptions=True)
            await self.server.wait_closed()

        asyncio.run_coroutine_threadsafe(shutdown(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()
