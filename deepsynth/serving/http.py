"""HTTP: a listening socket and the FastAPI app of a :class:`~deepsynth.serving.server.ModelServer` on uvicorn."""

from __future__ import annotations

import socket
import threading
import time

from deepsynth.serving.app import create_app
from deepsynth.serving.server import ModelServer


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: a free one; read it with ``getsockname()``)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    return sock


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
        self.uvicorn = uvicorn.Server(
            uvicorn.Config(create_app(server), log_level=log_level, access_log=access_log, timeout_graceful_shutdown=5)
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
