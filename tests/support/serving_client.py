"""Real HTTP for the serving tests: a uvicorn server on a free port of 127.0.0.1 and a urllib client."""

from __future__ import annotations

import base64
import json
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
