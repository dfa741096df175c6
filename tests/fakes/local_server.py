"""The part every local fake server shares: an aiohttp app on 127.0.0.1, on a port the OS
picks so that parallel tests never collide, started and stopped by the test itself."""

from __future__ import annotations

import socket
from types import TracebackType
from typing import Self

from aiohttp import web

SHUTDOWN_GRACE_SECONDS = 0.5


class LocalServer:
    def __init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    def build_app(self) -> web.Application:
        """The routes of the fake; each subclass says what it serves."""
        raise NotImplementedError

    def make_runner(self, app: web.Application) -> web.AppRunner:
        """A short shutdown grace: a test that stops a fake mid-request must not hang."""
        return web.AppRunner(app, shutdown_timeout=SHUTDOWN_GRACE_SECONDS, access_log=None)

    @property
    def url(self) -> str:
        if self._port is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return f"http://127.0.0.1:{self._port}"

    async def start(self) -> None:
        runner = self.make_runner(self.build_app())
        await runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        await web.SockSite(runner, sock).start()
        self._runner = runner
        self._port = sock.getsockname()[1]

    async def before_stop(self) -> None:
        """Close what the server itself holds open (websockets, waiters) before it stops."""

    async def stop(self) -> None:
        """Close the socket and any connections; safe to call twice."""
        await self.before_stop()
        if self._runner is not None:
            await self._runner.cleanup()
        self._runner = None
        self._port = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()
