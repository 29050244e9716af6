"""
A token introspection endpoint (RFC 7662) on a free loopback port.

It stands in for an external auth service: it knows the tokens a test gives
it, counts the calls it answers, and can be told to fail, to hold its
answers until released, or to answer with something that is not JSON.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from aiohttp import web

from livegame.app.embedded import free_port


class AuthStub:
    def __init__(self) -> None:
        self.tokens: dict[str, dict[str, Any]] = {}
        # Every call: (the token asked about, the Authorization header).
        self.calls: list[tuple[str, str | None]] = []
        # Set: every answer waits for it. Status: answer with it, no body.
        self.hold: anyio.Event | None = None
        self.fail_with: int | None = None
        self.garbage = False
        self.huge = False
        self.url = ""

    def know(self, token: str, sub: str, **claims: Any) -> str:
        self.tokens[token] = {"active": True, "sub": sub, **claims}
        return token

    async def _introspect(self, request: web.Request) -> web.Response:
        form = await request.post()
        token = str(form.get("token", ""))
        self.calls.append((token, request.headers.get("Authorization")))
        if self.hold is not None:
            await self.hold.wait()
        if self.fail_with is not None:
            return web.Response(status=self.fail_with)
        if self.garbage:
            return web.Response(text="<html>gateway</html>")
        if self.huge:
            padding = "x" * 200_000
            return web.json_response({"active": True, "sub": "a", "pad": padding})

        return web.json_response(self.tokens.get(token, {"active": False}))


@asynccontextmanager
async def auth_stub() -> AsyncIterator[AuthStub]:
    stub = AuthStub()
    app = web.Application()
    app.router.add_post("/introspect", stub._introspect)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    stub.url = f"http://127.0.0.1:{port}/introspect"
    try:
        yield stub
    finally:
        if stub.hold is not None:
            stub.hold.set()
        await runner.cleanup()
