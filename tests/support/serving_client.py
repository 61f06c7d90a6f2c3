"""Real HTTP for the serving tests: a uvicorn server on a free port of 127.0.0.1, a urllib client, and
``deepsynth serve`` as a process."""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request

TEXT = "Revenue grew twelve percent. Officials shared more details on Tuesday. Document 9 ends here."
OTHER = "The bridge reopens in May. Crews finished the deck early. Traffic returns next week."


def start_http(server):
    """Serve ``server`` on a free port of 127.0.0.1 in a thread; returns the started ``HttpServer``."""
    from deepsynth.serving.http import HttpServer, bind_socket

    return HttpServer(server, bind_socket("127.0.0.1", 0)).start()


def call(url, method="GET", body=None, headers=None, raw=None, timeout=120):
    """One real HTTP request: ``(status, headers, body)``, the body parsed when it is JSON."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), _parse(response.read())
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), _parse(err.read())


def _parse(payload: bytes):
    try:
        return json.loads(payload or b"null")
    except ValueError:
        return payload.decode(errors="replace")


def b64(data: bytes) -> str:
    """Base64 text of ``data``."""
    return base64.b64encode(data).decode()


class Served:
    """``deepsynth serve ... --json`` as a process: its one JSON document, and a clean stop by SIGTERM."""

    def __init__(self, argv, env=None):
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=lambda: self.lines.extend(self.proc.stdout), daemon=True)
        self.reader.start()

    def document(self, limit_s=180.0):
        deadline = time.monotonic() + limit_s
        while True:
            assert self.proc.poll() is None, self.proc.stderr.read()
            assert time.monotonic() < deadline, "no JSON document on stdout"
            try:
                return json.loads("".join(self.lines))
            except ValueError:
                time.sleep(0.1)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=60)
        self.reader.join(timeout=10)
        return code, self.proc.stderr.read()
