"""A layer-7 HTTP load balancer on loopback in front of several gateways, like an Ingress.

Each request goes to the next upstream in turn (round robin, per request, as ingress-nginx
balances over its own upstream connections), unless `affinity` is on: then a request
carrying the balancer's cookie goes to the upstream the cookie names, and one without it
is balanced and answered with `Set-Cookie` for the upstream it reached (ingress-nginx's
`affinity: cookie`). Every forwarded request gets `X-Forwarded-For` with the client's
address. `routed` records which upstream each request went to.

It runs its own asyncio loop on a daemon thread, so synchronous tests use it with plain
calls (`start()`, `stop()`).
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from types import TracebackType
from typing import Self

import aiohttp
from aiohttp import web

COOKIE = "outpost-gateway"
CALL_TIMEOUT = 10.0


class HttpBalancer:
    def __init__(self, upstreams: list[str], *, affinity: bool = False) -> None:
        self.upstreams = upstreams
        self.affinity = affinity
        self.routed: list[int] = []
        self.port = 0
        self._next = itertools.cycle(range(len(upstreams)))
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="http-balancer", daemon=True)
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> Self:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(CALL_TIMEOUT)
        return self

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(CALL_TIMEOUT)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(CALL_TIMEOUT)
        self._loop.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()

    async def _start(self) -> None:
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._http is not None:
            await self._http.close()

    def _choose(self, request: web.Request) -> tuple[int, bool]:
        """The upstream for this request, and whether to (re)set the affinity cookie."""
        if self.affinity:
            pinned = request.cookies.get(COOKIE, "")
            if pinned.isdigit() and int(pinned) < len(self.upstreams):
                return int(pinned), False
            return next(self._next), True
        return next(self._next), False

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        assert self._http is not None
        index, set_cookie = self._choose(request)
        self.routed.append(index)
        peer = request.transport.get_extra_info("peername") if request.transport else None
        headers = {"Content-Type": request.headers.get("Content-Type", "application/octet-stream")}
        if peer:
            headers["X-Forwarded-For"] = str(peer[0])
        url = f"http://{self.upstreams[index]}{request.path_qs}"
        try:
            async with self._http.request(request.method, url, data=await request.read(), headers=headers) as upstream:
                body = await upstream.read()
                response = web.Response(
                    status=upstream.status, body=body, content_type=upstream.content_type or "application/octet-stream"
                )
        except aiohttp.ClientError:
            return web.Response(status=502, text="upstream unavailable\n")
        if set_cookie:
            response.set_cookie(COOKIE, str(index), path="/v1/", httponly=True)
        return response
