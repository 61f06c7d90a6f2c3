"""The ASGI middleware in front of the serving app: Host check, request bodies bounded in size and time.

:class:`Guard` wraps the FastAPI app that :mod:`deepsynth.serving.http` serves and answers for it, as
JSON ``{"error": ...}``, with the connection closed:

- a ``Host`` the server is not reachable as, when no token is set (DNS rebinding: a page on
  ``evil.example`` whose name resolves to 127.0.0.1 would otherwise drive the server from a browser):
  400 without a Host, 421 with another one;
- a body over ``max_body_bytes``, counted while it streams (``Content-Length`` or chunked): 413 as soon
  as the bound is passed, nothing past it buffered;
- a body that would take the bodies held at once, all connections together, past ``max_bodies_bytes``:
  503 with ``Retry-After`` (so ``max_connections`` bodies of ``max_body_bytes`` cannot pile up);
- a body still incomplete ``body_timeout_s`` after the headers: 408.

Header and send timeouts and the connection cap live in the protocol (:mod:`deepsynth.serving.http`),
below ASGI.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

#: After the bound is passed, this much more of the body (and for at most DRAIN_S seconds) is read and dropped
#: before the refusal goes out, so a client that sends its whole body before reading sees the answer rather
#: than a reset connection.
DRAIN_BYTES = 4 * 1024 * 1024
DRAIN_S = 1.0


class _Refused(Exception):
    """The guard answered the request itself; the app's work on it stops here."""


def json_message(status: int, message: str, retry_after: int | None = None) -> tuple[Message, Message]:
    """``http.response.start`` and ``http.response.body`` of ``{"error": message}``; the connection closes."""
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    start = {"type": "http.response.start", "status": status, "headers": [*headers, (b"connection", b"close")]}
    return start, {"type": "http.response.body", "body": body, "more_body": False}


class HostCheck:
    """Which ``Host`` headers a server bound to ``bound_host`` answers when no token is set.

    An IP literal the server listens on (any, for 0.0.0.0 / ::), ``localhost`` and the names in
    ``allowed`` pass; the port is not compared (a port-forward changes it). DNS rebinding needs a name
    the attacker controls, so it never passes.
    """

    def __init__(self, bound_host: str, allowed: Iterable[str] = ()):
        self.bound = ipaddress.ip_address(bound_host.split("%")[0])
        self.names = {"localhost", *(name.lower().rstrip(".") for name in allowed)}

    def refusal(self, host: str | None) -> tuple[int, str] | None:
        """``(status, message)`` when ``host`` (the header's value) is refused, else ``None``."""
        if not host:
            return 400, "Host header missing (this server answers requests to its own address only)"
        name, port = _split_host(host)
        if port is not None and not port.isdigit():
            return 400, f"Host {host[:100]!r}: the port is not a number"
        if name.lower().rstrip(".") in self.names:
            return None
        try:
            address = ipaddress.ip_address(name)
        except ValueError:
            address = None
        if address is not None and (self.bound.is_unspecified or address == self.bound):
            return None
        return 421, (
            f"Host {host[:100]!r}: this server answers as {self.bound} or localhost only (no token set; "
            "a name is refused against DNS rebinding: set DEEPSYNTH_API_TOKEN or add it to serve.allowed_hosts)"
        )


def _split_host(host: str) -> tuple[str, str | None]:
    if host.startswith("["):
        name, _, rest = host[1:].partition("]")
        return name, rest[1:] if rest.startswith(":") else (rest or None)
    if host.count(":") == 1:
        name, _, port = host.partition(":")
        return name, port
    return host, None


class Guard:
    """ASGI middleware: Host check, bounded and timed request bodies (see the module docstring).

    Args:
        app: The ASGI app to guard.
        max_body_bytes: Largest request body.
        max_bodies_bytes: Most body bytes held by all requests in progress together.
        body_timeout_s: Time from the headers to the end of the body.
        hosts: The Host check, or ``None`` to accept any Host (a token is set).
    """

    def __init__(
        self,
        app: App,
        *,
        max_body_bytes: int,
        max_bodies_bytes: int,
        body_timeout_s: float,
        hosts: HostCheck | None,
        retry_after_s: int = 1,
    ):
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_bodies_bytes = max_bodies_bytes
        self.retry_after_s = retry_after_s
        self.held = 0  # body bytes handed to the app by requests still in progress
        self.body_timeout_s = body_timeout_s
        self.hosts = hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.lower(): v for k, v in scope.get("headers", ())}
        if self.hosts is not None:
            refused = self.hosts.refusal(headers.get(b"host", b"").decode("latin-1"))
            if refused is not None:
                for message in json_message(*refused):
                    await send(message)
                return None
        await _Exchange(self, receive, send, headers.get(b"content-length")).run(scope)
        return None


class _Exchange:
    """One request through the guard: counts the body as the app reads it, answers for the app when refused."""

    def __init__(self, guard: Guard, receive: Receive, send: Send, content_length: bytes | None):
        self.guard = guard
        self._receive = receive
        self._send = send
        self.declared = content_length
        self.received = 0
        self.held = 0  # of which handed to the app (counted in ``guard.held`` until the request ends)
        self.body_done = False
        self.deadline = time.monotonic() + guard.body_timeout_s
        self.answered = False  # the guard sent the response; whatever the app sends is dropped
        self.started = False  # the app started its response (the guard can then only end the connection)

    async def run(self, scope: Scope) -> None:
        if self.declared is not None:
            if not self.declared.isdigit():
                return await self._refuse(400, "Content-Length: not a number")
            if int(self.declared) > self.guard.max_body_bytes:
                await self._drain()
                return await self._refuse(413, self._too_large(int(self.declared)))
        try:
            await self.guard.app(scope, self.receive, self.send)
        except _Refused:
            pass
        except Exception:
            if not self.answered:
                raise
            logger.debug("the app failed after the guard answered", exc_info=True)
        finally:
            self.guard.held -= self.held
        return None

    def _too_large(self, size: int, more: bool = False) -> str:
        return (
            f"request body: {size}{'+' if more else ''} bytes, the limit is max_body_bytes={self.guard.max_body_bytes}"
        )

    async def _next(self) -> Message:
        """The next message from the client, within the body deadline (408 and :class:`_Refused` past it)."""
        left = self.deadline - time.monotonic()
        try:
            if left <= 0:
                raise TimeoutError
            message = await asyncio.wait_for(self._receive(), left)
        except TimeoutError:
            await self._refuse(
                408,
                f"request body: incomplete after body_timeout_s={self.guard.body_timeout_s} ({self.received} bytes)",
            )
            raise _Refused from None
        self._count(message)
        return message

    def _count(self, message: Message) -> None:
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            self.body_done = not message.get("more_body", False)
        else:
            self.body_done = True

    async def _drain(self) -> None:
        """Read and drop up to :data:`DRAIN_BYTES` more of the body (never held), for :data:`DRAIN_S` at most."""
        stop, until = self.received + DRAIN_BYTES, min(self.deadline, time.monotonic() + DRAIN_S)
        while not self.body_done and self.received < stop:
            left = until - time.monotonic()
            if left <= 0:
                return
            try:
                message = await asyncio.wait_for(self._receive(), left)
            except TimeoutError:
                return
            self._count(message)

    async def receive(self) -> Message:
        """The app's ``receive``: body messages counted against the bound and the deadline."""
        if self.body_done or self.answered:
            return await self._receive()  # waits for the disconnect, without a deadline
        message = await self._next()
        if self.received > self.guard.max_body_bytes:
            await self._drain()
            await self._refuse(413, self._too_large(self.received, more=not self.body_done))
            raise _Refused
        size = len(message.get("body", b""))
        if self.guard.held + size > self.guard.max_bodies_bytes:
            await self._drain()
            await self._refuse(
                503,
                f"server busy: request bodies in progress would pass max_bodies_bytes={self.guard.max_bodies_bytes}",
                self.guard.retry_after_s,
            )
            raise _Refused
        self.held += size
        self.guard.held += size
        return message

    async def send(self, message: Message) -> None:
        """The app's ``send``, dropped once the guard answered."""
        if self.answered:
            return
        self.started = self.started or message["type"] == "http.response.start"
        await self._send(message)

    async def _refuse(self, status: int, message: str, retry_after: int | None = None) -> None:
        if self.answered:
            return
        self.answered = True
        if self.started:
            return  # the app's response is under way: ending the request is all that is left
        for part in json_message(status, message, retry_after):
            await self._send(part)
