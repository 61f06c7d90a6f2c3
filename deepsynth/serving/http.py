"""HTTP: a listening socket and the FastAPI app of a :class:`~deepsynth.serving.server.ModelServer` on uvicorn.

Below the app, against hostile clients (the ``serve`` config's knobs): at most ``max_connections``
open connections, kept below the process's file-descriptor limit so the event loop never meets
EMFILE (more are answered 503 and closed at once); a connection that has not sent a request's headers
``header_timeout_s`` after it opened or after its last response is closed (slowloris); one that
stops reading its response is dropped after ``send_timeout_s``;
``keep_alive_timeout_s`` for idle keep-alive connections; request heads of 16 KiB at most (400). Above
it, :class:`~deepsynth.serving.guard.Guard` bounds bodies and body time and checks ``Host``.
"""

from __future__ import annotations

import json
import logging
import resource
import socket
import sys
import threading
import time
from typing import Any

from deepsynth.serving.app import create_app
from deepsynth.serving.config import ServeConfig, api_token
from deepsynth.serving.guard import Guard, HostCheck
from deepsynth.serving.server import ModelServer

logger = logging.getLogger(__name__)

#: Connections asyncio may accept in one go (and the listen backlog): fds held before the cap closes them.
ACCEPT_BATCH = 64
#: File descriptors kept free for everything but client connections (model files, threads, stores, logs).
RESERVED_FDS = 64
#: Longest request head (request line and headers) in bytes.
MAX_HEAD_BYTES = 16 * 1024


def _raw_answer(status: str, message: str) -> bytes:
    """A whole HTTP/1.1 response ``{"error": message}`` that closes the connection, for use below h11."""
    body = json.dumps({"error": message}).encode()
    head = (
        f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\nconnection: close\r\n"
    )
    return head.encode() + b"\r\n" + body


def connection_cap(wanted: int) -> int:
    """``wanted``, lowered to leave :data:`ACCEPT_BATCH` + :data:`RESERVED_FDS` of the fd limit free."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    room = soft - ACCEPT_BATCH - RESERVED_FDS if soft != resource.RLIM_INFINITY else wanted
    if room < wanted:
        print(
            f"warning: serve.max_connections={wanted} lowered to {max(room, 1)}: the open-file limit is {soft} "
            "(raise it with ulimit -n)",
            file=sys.stderr,
        )
    return max(1, min(wanted, room))


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: a free one; read it with ``getsockname()``)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(ACCEPT_BATCH)
    return sock


def protocol_class(cap: int, header_timeout_s: float, send_timeout_s: float) -> type:
    """uvicorn's h11 protocol with a connection cap, a header timeout and a send timeout (module docstring)."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class GuardedH11Protocol(H11Protocol):
        refused = False
        header_timer: Any = None
        send_timer: Any = None

        def connection_made(self, transport: Any) -> None:
            if len(self.connections) >= cap:
                self.refused = True
                transport.write(_raw_answer("503 Service Unavailable", f"too many connections (max_connections={cap})"))
                transport.close()
                return
            super().connection_made(transport)
            self._arm_header_timer()

        def connection_lost(self, exc: Exception | None) -> None:
            for timer in (self.header_timer, self.send_timer):
                if timer is not None:
                    timer.cancel()
            if not self.refused:
                super().connection_lost(exc)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm_header_timer()  # the next request's headers are due as the first one's were

        def pause_writing(self) -> None:
            super().pause_writing()  # the client stopped taking the response: it has send_timeout_s to resume
            if self.send_timer is None:
                self.send_timer = self.loop.call_later(send_timeout_s, self._send_timeout)

        def resume_writing(self) -> None:
            super().resume_writing()
            if self.send_timer is not None:
                self.send_timer.cancel()
                self.send_timer = None

        def _send_timeout(self) -> None:
            self.send_timer = None
            logger.warning("client did not read the response for send_timeout_s=%s: connection dropped", send_timeout_s)
            self.transport.abort()  # close() would wait for the unread buffer to drain

        def _arm_header_timer(self) -> None:
            if self.header_timer is not None:
                self.header_timer.cancel()
            self.header_timer = self.loop.call_later(header_timeout_s, self._header_timeout)

        def _header_timeout(self) -> None:
            self.header_timer = None
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                message = f"no complete request headers within header_timeout_s={header_timeout_s}"
                self.transport.write(_raw_answer("408 Request Timeout", message))
                self.transport.close()

    return GuardedH11Protocol


def guarded_app(app: Any, config: ServeConfig, bound_host: str) -> Guard:
    """``app`` behind :class:`Guard` with ``config``'s limits; the Host check only when no token is set."""
    hosts = None if api_token() else HostCheck(bound_host, config.allowed_hosts)
    return Guard(
        app,
        max_body_bytes=config.max_body_bytes,
        max_bodies_bytes=config.max_bodies_bytes,
        body_timeout_s=config.body_timeout_s,
        hosts=hosts,
        retry_after_s=config.retry_after_s,
    )


class HttpServer:
    """The FastAPI app of ``server`` on uvicorn, in this thread (:meth:`run`) or a background one (:meth:`start`).

    Args:
        server: The started :class:`ModelServer`.
        sock: A socket from :func:`bind_socket`.
        log_level: uvicorn's log level.
        access_log: Log one line per request (uvicorn's access log).
    """

    def __init__(self, server: ModelServer, sock: socket.socket, log_level: str = "warning", access_log: bool = False):
        import uvicorn

        self.sock = sock
        config = server.config
        self.uvicorn = uvicorn.Server(
            uvicorn.Config(
                guarded_app(create_app(server), config, sock.getsockname()[0]),
                log_level=log_level,
                access_log=access_log,
                timeout_graceful_shutdown=5,
                http=protocol_class(
                    connection_cap(config.max_connections), config.header_timeout_s, config.send_timeout_s
                ),
                backlog=ACCEPT_BATCH,
                timeout_keep_alive=config.keep_alive_timeout_s,
                h11_max_incomplete_event_size=MAX_HEAD_BYTES,
            )
        )
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``http://HOST:PORT``."""
        host, port = self.sock.getsockname()[:2]
        return f"http://{f'[{host}]' if ':' in host else host}:{port}"

    def run(self) -> None:
        """Serve until SIGINT/SIGTERM."""
        self.uvicorn.run(sockets=[self.sock])

    def start(self, timeout: float = 30.0) -> HttpServer:
        """Serve in a daemon thread; return once uvicorn accepts connections."""
        self._thread = threading.Thread(target=self.run, name="deepsynth-uvicorn", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.uvicorn.started and time.monotonic() < deadline and self._thread.is_alive():
            time.sleep(0.02)
        if not self.uvicorn.started:
            raise RuntimeError("uvicorn did not start")
        return self

    def stop(self) -> None:
        """Stop serving and wait for the thread."""
        self.uvicorn.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=30)
