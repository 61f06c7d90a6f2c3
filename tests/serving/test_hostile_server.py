"""Hostile clients against the real server on 127.0.0.1 (bounded in count and time): oversized chunked
bodies, slow and half-open connections, connection floods then SIGTERM, invalid Unicode and huge
instructions beside normal requests, expensive page sets, DNS rebinding."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from support.rendered import draw_page
from support.serving_client import TEXT, b64, call, start_http

from deepsynth.serving.config import TOKEN_ENV, ServeConfig
from deepsynth.serving.guard import DRAIN_BYTES
from deepsynth.serving.inputs import RequestError, check_request
from deepsynth.serving.server import ModelServer

MB = 1024 * 1024
LIMITS = dict(
    max_batch_size=4,
    max_wait_ms=200,  # requests sent together share a batch
    max_body_bytes=12 * MB,
    max_bodies_bytes=64 * MB,
    max_new_tokens=8,
    default_max_new_tokens=6,
    poll_interval_s=0,
    max_instruction_chars=2000,
    max_instruction_tokens=64,
    max_pages=16,
    max_request_pixels=3 * 512 * 512,
    header_timeout_s=1.0,
    body_timeout_s=2.0,
    keep_alive_timeout_s=1.0,
    allowed_hosts=["summarizer.internal"],
)


@pytest.fixture(scope="module")
def server(packages, shared_home):
    served = ModelServer(ServeConfig(**LIMITS), home=shared_home).start([f"first={packages[0].output_dir}"])
    yield served
    served.stop()


@pytest.fixture(scope="module")
def http(server, monkeypatch_module):
    monkeypatch_module.delenv(TOKEN_ENV, raising=False)
    started = start_http(server)
    yield started
    started.stop()


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def address(http):
    return http.sock.getsockname()[:2]


def exchange(http, data: bytes, timeout=10.0) -> tuple[int | None, dict, float]:
    """Send raw bytes, read until the server closes: ``(status, JSON body or {}, seconds until closed)``."""
    began = time.monotonic()
    with socket.create_connection(address(http), timeout=timeout) as sock:
        sock.sendall(data)
        reply = read_to_close(sock)
    return parse(reply) + (time.monotonic() - began,)


def read_to_close(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (a reset ends it too)."""
    reply = b""
    try:
        while chunk := sock.recv(65536):
            reply += chunk
    except ConnectionResetError:
        pass
    return reply


def read_response(sock: socket.socket) -> tuple[int | None, dict]:
    """One whole response (head and ``Content-Length`` bytes of body) from a connection kept open."""
    reply = b""
    while b"\r\n\r\n" not in reply:
        reply += sock.recv(65536)
    head, _, body = reply.partition(b"\r\n\r\n")
    length = next(int(ln.split(b":")[1]) for ln in head.lower().split(b"\r\n") if ln.startswith(b"content-length:"))
    while len(body) < length:
        body += sock.recv(65536)
    return parse(reply[: len(head) + 4] + body)


def parse(reply: bytes) -> tuple[int | None, dict]:
    if not reply.startswith(b"HTTP/1.1 "):
        return None, {}
    head, _, body = reply.partition(b"\r\n\r\n")
    try:
        return int(head.split()[1]), json.loads(body)
    except ValueError:
        return int(head.split()[1]), {}


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRss:
    """The highest resident size of this process (the server runs in it) while the block runs, above the start."""

    def __enter__(self):
        self.start = self.peak = rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self):
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, rss_bytes())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    @property
    def growth(self) -> int:
        return self.peak - self.start


def test_a_chunked_body_past_max_body_bytes_gets_413_while_it_streams_and_memory_stays_flat(http):
    limit = LIMITS["max_body_bytes"]
    chunk = b"x" * (256 * 1024)
    sent, reply = 0, b""
    with PeakRss() as rss, socket.create_connection(address(http), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/summarize HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        try:
            while sent < 1024 * MB and not reply:  # what the client would send: 1 GiB
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
                if select.select([sock], [], [], 0)[0]:
                    reply = sock.recv(65536)
        except (BrokenPipeError, ConnectionResetError):
            pass
        reply += read_to_close(sock)
    status, body = parse(reply)
    assert status == 413 and body["error"].startswith("request body: ")
    assert f"the limit is max_body_bytes={limit}" in body["error"]
    assert sent < limit + DRAIN_BYTES + 16 * MB  # answered at the bound, not at the end of the body
    assert rss.growth < 2 * limit + 16 * MB, f"server memory grew by {rss.growth / MB:.0f} MiB"
    assert call(f"{http.url}/healthz")[0] == 200


def test_bodies_held_at_once_are_bounded_across_connections():
    """``max_connections`` bodies of ``max_body_bytes`` each cannot pile up: past ``max_bodies_bytes``, 503."""
    config = ServeConfig(max_body_bytes=12 * MB, max_bodies_bytes=16 * MB, body_timeout_s=60, poll_interval_s=0)
    http = start_http(ModelServer(config))  # the guard answers before any model is needed
    head = b"POST /v1/summarize HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    head += b"Transfer-Encoding: chunked\r\n\r\n"
    ten_mb = b"%x\r\n%s\r\n" % (10 * MB, b"x" * 10 * MB)
    try:
        with socket.create_connection(address(http), timeout=30) as first:
            first.sendall(head + ten_mb)  # held by the app, body not finished
            time.sleep(0.5)
            with socket.create_connection(address(http), timeout=30) as second:
                try:
                    second.sendall(head + ten_mb)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                reply = read_to_close(second)
            assert parse(reply) == (
                503,
                {"error": f"server busy: request bodies in progress would pass max_bodies_bytes={16 * MB}"},
            )
            assert b"retry-after: 1" in reply.lower()
            first.sendall(b"0\r\n\r\n")  # the first body ends: not JSON, 422 from the app
            assert parse(read_to_close(first))[0] == 422
        status, _body, _ = exchange(http, head + ten_mb + b"0\r\n\r\n")  # its bytes were released
        assert status == 422
    finally:
        http.stop()


def test_a_chunked_body_within_the_limit_is_served_as_usual(http, alone):
    payload = json.dumps({"text": TEXT, "max_new_tokens": 6}).encode()
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (payload[:10], payload[10:]))
    status, body, _ = exchange(
        http,
        b"POST /v1/summarize HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + chunks + b"0\r\n\r\n",
        timeout=120,
    )
    assert status == 200 and body["summary"] == alone(0, text=TEXT)


def test_slow_headers_slow_bodies_and_idle_connections_are_cut_off(http):
    # Headers never completed: 408 after header_timeout_s, however the bytes trickle in (slowloris).
    began = time.monotonic()
    with socket.create_connection(address(http), timeout=10) as sock:
        for byte in b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaa":
            try:
                sock.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                break
            if select.select([sock], [], [], 0.05)[0]:
                break
        reply = read_to_close(sock)
    took = time.monotonic() - began
    status, body = parse(reply)
    assert status == 408 and "header_timeout_s=1.0" in body["error"]
    assert 0.9 < took < 3.0

    # A body that never completes: 408 after body_timeout_s.
    status, body, took = exchange(
        http, b'POST /v1/summarize HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n{"text": '
    )
    assert status == 408 and "body_timeout_s=2.0" in body["error"] and 1.9 < took < 4.0

    # A connection that sends nothing is closed too, and an idle keep-alive one after keep_alive_timeout_s.
    status, _body, took = exchange(http, b"")
    assert status == 408 and took < 3.0
    with socket.create_connection(address(http), timeout=10) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert read_response(sock) == (200, {"status": "ok"})
        began = time.monotonic()
        assert sock.recv(1) == b""
        assert time.monotonic() - began < 3.0
    # Oversized request heads get 400, not a buffer that grows.
    status, _body, _took = exchange(http, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 64 * 1024)
    assert status == 400
    assert call(f"{http.url}/healthz")[0] == 200


def test_a_lone_surrogate_instruction_fails_alone_beside_a_normal_request(http, alone):
    bad = b'{"text": "x", "instruction": "\\ud83d", "max_new_tokens": 6}'  # JSON escape: a lone surrogate
    with ThreadPoolExecutor(2) as pool:
        good = pool.submit(call, f"{http.url}/v1/summarize", "POST", {"text": TEXT, "max_new_tokens": 6})
        refused = pool.submit(call, f"{http.url}/v1/summarize", "POST", raw=bad)
        (status, _, body), (bad_status, _, bad_body) = good.result(), refused.result()
    assert status == 200 and body["summary"] == alone(0, text=TEXT)
    assert bad_status == 422 and bad_body["error"].startswith("instruction: not valid Unicode")
    assert "at character 1" in bad_body["error"]
    status, _, body = call(f"{http.url}/v1/summarize", "POST", raw=b'{"text": "a \\udfff b"}')
    assert status == 422 and body["error"].startswith("text: not valid Unicode")
    assert "at character 3" in body["error"]


def test_check_request_bounds_the_instruction_and_names_the_field_and_limit(server):
    config, tokenizer = server.config, server.holder.tokenizer
    cases = [
        (
            dict(instruction="x" * 10_000_000),
            413,
            "instruction: 10000000 characters, the limit is max_instruction_chars=2000",
        ),
        (dict(instruction=" ".join(f"word{i}" for i in range(200))), 413, "the limit is max_instruction_tokens=64"),
        (dict(instruction="\ud83d"), 422, "instruction: not valid Unicode (lone surrogate U+D83D at character 1)"),
        (dict(text="a \udfff"), 422, "text: not valid Unicode (lone surrogate U+DFFF at character 3)"),
        (dict(stop=["ok", "\ud800"]), 422, "stop[1]: not valid Unicode"),
        (dict(messages=[{"content": [{"text": "\udc00"}]}]), 422, "messages[0].content[0].text: not valid Unicode"),
    ]
    for fields, status, message in cases:
        with pytest.raises(RequestError) as refused:
            check_request(config, tokenizer, **fields)
        assert refused.value.status == status and message in str(refused.value)
    check_request(config, tokenizer, text=TEXT, instruction="Summarize this text: ✓ 😀", adapter="first", stop=["\n"])


def test_instructions_are_bounded_in_characters_and_tokens(http):
    wordy = " ".join(f"word{i}" for i in range(200))  # under 2000 characters, far over 64 tokens
    status, _, body = call(f"{http.url}/v1/summarize", "POST", {"text": TEXT, "instruction": wordy})
    assert status == 413 and body["error"].endswith("tokens, the limit is max_instruction_tokens=64")
    began = time.monotonic()  # 10 MB: attention over it would want about 1 TB
    status, _, body = call(f"{http.url}/v1/summarize", "POST", {"text": TEXT, "instruction": "x" * 10_000_000})
    assert (
        status == 413 and body["error"] == "instruction: 10000000 characters, the limit is max_instruction_chars=2000"
    )
    assert time.monotonic() - began < 10  # refused up front: nothing tokenized, nothing decoded
    status, _, body = call(f"{http.url}/v1/summarize", "POST", {"text": TEXT, "instruction": "Summarize:"})
    assert status == 200 and body["summary"]


def test_a_request_costing_more_pixels_than_max_request_pixels_is_refused_before_decoding(http):
    png = draw_page(TEXT, (512, 512))
    page, truncated = b64(png), b64(png[: len(png) // 2])  # the second one's header is whole, its pixels are not
    status, _, body = call(f"{http.url}/v1/summarize", "POST", {"pages": [truncated] + [page] * 3})
    assert status == 413 and body["error"] == (  # not the 400 of pages[0]: nothing was decoded
        "pages: 1048576 pixels up to pages[3], the limit for a request's pages together is "
        f"max_request_pixels={LIMITS['max_request_pixels']}"
    )
    status, _, body = call(f"{http.url}/v1/summarize", "POST", {"pages": [truncated] + [page] * 2})
    assert status == 400 and body["error"].startswith("pages[0]: not a decodable image")
    assert call(f"{http.url}/v1/summarize", "POST", {"pages": [page] * 3, "max_new_tokens": 2})[0] == 200


@pytest.mark.parametrize(
    ("host", "status"),
    [
        ("evil.example", 421),  # DNS rebinding: the attacker's name resolving to 127.0.0.1
        ("evil.example:{port}", 421),
        ("127.0.0.2:{port}", 421),  # an address the server is not bound to
        ("127.0.0.1:{port}", 200),
        ("localhost:{port}", 200),
        ("LOCALHOST.", 200),
        ("summarizer.internal:{port}", 200),  # serve.allowed_hosts
        ("127.0.0.1:port", 400),
    ],
)
def test_without_a_token_only_the_bound_address_is_served(http, host, status):
    port = address(http)[1]
    answer, body, _ = exchange(
        http, f"GET /healthz HTTP/1.1\r\nHost: {host.format(port=port)}\r\nConnection: close\r\n\r\n".encode()
    )
    assert answer == status
    if status == 421:
        assert "DNS rebinding" in body["error"] and "serve.allowed_hosts" in body["error"]


def test_without_a_token_a_request_without_host_is_refused(http):
    answer, body, _ = exchange(http, b"GET /healthz HTTP/1.0\r\n\r\n")
    assert answer == 400 and body["error"].startswith("Host header missing")


def test_with_a_token_the_token_protects_and_any_host_is_let_through(server, monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, "s3cret")
    guarded = start_http(server)
    try:
        request = b"GET /v1/adapters HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n%s\r\n"
        assert exchange(guarded, request % b"")[0] == 401
        assert exchange(guarded, request % b"Authorization: Bearer s3cret\r\n")[0] == 200
    finally:
        guarded.stop()


@pytest.mark.slow
def test_a_connection_flood_is_capped_below_the_fd_limit_and_sigterm_still_stops_the_server(
    packages, shared_home, tmp_path
):
    config = tmp_path / "serve.yaml"
    config.write_text("serve:\n  max_connections: 1000\n  header_timeout_s: 10\n  poll_interval_s: 0\n")
    command = [sys.executable, "-m", "deepsynth_cli", "serve", "--model", f"first={packages[0].package_path}"]
    command += ["--config", str(config), "--port", "0", "--json"]
    log = tmp_path / "stderr.log"
    with open(log, "w") as stderr:
        proc = subprocess.Popen(
            ["bash", "-c", 'ulimit -n 256 && exec "$@"', "serve", *command],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env={**os.environ, "DEEPSYNTH_HOME": str(shared_home)},
        )
    flood: list[socket.socket] = []
    try:
        lines = []
        while True:  # the one JSON document on stdout: the server is up
            line = proc.stdout.readline()
            assert line, log.read_text()
            lines.append(line)
            try:
                url = json.loads("".join(lines))["url"]
                break
            except ValueError:
                continue
        host, port = url.removeprefix("http://").split(":")

        def open_half(n):
            for _ in range(n):
                try:
                    sock = socket.create_connection((host, int(port)), timeout=10)
                except OSError as exc:  # the server's own account of why it stopped listening
                    raise AssertionError(
                        f"connection {len(flood) + 1}: {exc}; server exit status {proc.poll()}; "
                        f"its stderr ends:\n{log.read_text()[-3000:]}"
                    ) from exc
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # headers never finished
                flood.append(sock)

        began = time.monotonic()
        open_half(300)  # more connections than the 256 descriptors the server may open
        answers: dict[int, int | None] = dict.fromkeys(range(len(flood)))
        settle = time.monotonic() + 2  # the server answers every connection past the cap at once
        while time.monotonic() < settle:
            for sock in select.select([s for i, s in enumerate(flood) if answers[i] is None], [], [], 0.1)[0]:
                try:  # 503 and closed, or reset: the client's unread request head makes the close a reset
                    answers[flood.index(sock)] = parse(sock.recv(65536))[0] or 503
                except ConnectionResetError:
                    answers[flood.index(sock)] = 503
        refused, held = list(answers.values()).count(503), list(answers.values()).count(None)
        assert set(answers.values()) <= {None, 503, 408}
        if time.monotonic() - began < 9:  # no header timeout yet: exactly the cap is held, the rest refused
            assert (held, refused) == (128, 300 - 128)
        else:  # a slow machine: some held ones timed out and freed their places for others
            assert held <= 128 and refused >= 300 - 2 * 128
        deadline = time.monotonic() + 20  # the half-open ones are closed after header_timeout_s
        while call(f"{url}/healthz", timeout=5)[0] != 200:
            assert time.monotonic() < deadline, "/healthz never answered after the flood"
            time.sleep(0.2)
        for sock in flood:
            sock.close()
        flood.clear()
        open_half(100)  # a flood in progress does not keep SIGTERM from stopping the server
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    finally:
        for sock in flood:
            sock.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stderr = log.read_text()
    assert code == 0 and "stopped (SIGTERM)" in stderr, stderr[-3000:]
    assert "serve.max_connections=1000 lowered to 128: the open-file limit is 256" in stderr
    assert "out of system resource" not in stderr and "Too many open files" not in stderr, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]


def test_a_client_that_stops_reading_the_response_is_dropped_after_send_timeout_s():
    """The guard and protocol of every server, around an app whose answer is far larger than socket buffers."""
    import uvicorn

    from deepsynth.serving.guard import Guard
    from deepsynth.serving.http import bind_socket, protocol_class

    finished = threading.Event()

    async def large_answer(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            for _ in range(1024):  # 256 MiB in all
                await send({"type": "http.response.body", "body": b"x" * (256 * 1024), "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            finished.set()

    guarded = Guard(large_answer, max_body_bytes=MB, max_bodies_bytes=MB, body_timeout_s=5, hosts=None)
    sock = bind_socket("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(guarded, http=protocol_class(16, 5.0, 1.0), log_level="critical"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.01)
        with socket.create_connection(sock.getsockname()[:2], timeout=10) as client:
            client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
            client.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            began = time.monotonic()
            assert finished.wait(10), "the app was still sending to a client that reads nothing"
            assert 0.9 < time.monotonic() - began < 5
            deadline = time.monotonic() + 5
            while server.server_state.connections:  # and the connection is closed
                assert time.monotonic() < deadline
                time.sleep(0.05)
    finally:
        server.should_exit = True
        thread.join(10)
