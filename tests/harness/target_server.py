"""A real HTTP server standing in for a deployment target, its health endpoint and its Prometheus.

Routes:

- ``POST|PUT|PATCH|DELETE /effects/<name>``: applies an effect once per ``Idempotency-Key`` (every time when
  the header is absent) and counts it; ``fail_next`` makes the next calls answer an error instead.
  ``?delay=<seconds>`` answers that much later, after the effect was applied (a caller lost in between).
- ``GET /health``: answers ``health_status`` with ``health_body``.
- ``GET /api/v1/query?query=...``: Prometheus's instant query API; a vector with ``metric_value``, or an
  empty vector when it is None.
- ``GET /status/<code>``, ``/redirect`` (302 to /health), ``/bytes/<n>``, ``/slow/<seconds>``: for edge cases.

``running_effects_server`` serves the effects route alone from one asyncio loop, for benchmarks: the threaded
server spends tens of milliseconds of its own per call when 64 arrive together (a thread and a header parse
each, under one interpreter lock), which would be counted against the engine.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import ssl
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class TargetServer:
    """The server's state, which tests set and inspect; the handler threads read and change it under a lock."""

    port: int = 0
    scheme: str = "http"
    health_status: int = 200
    health_body: str = "ok"
    metric_value: float | None = 0.0
    requests: list[RecordedRequest] = field(default_factory=list)
    _effects: dict[str, int] = field(default_factory=dict)
    _seen_keys: dict[tuple[str, str], dict] = field(default_factory=dict)
    _failures: list[tuple[int, str | None]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str, *, host: str = "localhost") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    def effect_count(self, path: str) -> int:
        with self._lock:
            return self._effects.get(path, 0)

    def effect_counts(self, prefix: str = "/effects/") -> dict[str, int]:
        with self._lock:
            return {path: count for path, count in self._effects.items() if path.startswith(prefix)}

    def fail_next(self, times: int, *, status: int = 500, retry_after: str | None = None) -> None:
        with self._lock:
            self._failures += [(status, retry_after)] * times

    def requests_to(self, path: str) -> list[RecordedRequest]:
        with self._lock:
            return [request for request in self.requests if urlsplit(request.path).path == path]

    def apply_effect(self, path: str, key: str | None) -> tuple[int, dict, dict[str, str]]:
        """Status, JSON answer and headers of an effect call: a pending failure, a replay, or a new effect."""
        with self._lock:
            if self._failures:
                status, retry_after = self._failures.pop(0)
                return status, {"error": "failing as told"}, {"Retry-After": retry_after} if retry_after else {}
            if key is not None and (path, key) in self._seen_keys:
                return 200, {**self._seen_keys[path, key], "replayed": True}, {}
            self._effects[path] = self._effects.get(path, 0) + 1
            answer = {"effect": self._effects[path], "replayed": False}
            if key is not None:
                self._seen_keys[path, key] = answer
            return 200, answer, {}


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format, *args):
        pass

    def do_GET(self):
        target, parts = self._record()
        path = parts.path
        if path == "/health":
            self._send(target.health_status, target.health_body.encode(), "text/plain")
        elif path == "/api/v1/query":
            query = parse_qs(parts.query).get("query", [""])[0]
            value = target.metric_value
            result = [] if value is None else [{"metric": {"query": query}, "value": [time.time(), str(value)]}]
            self._send_json(200, {"status": "success", "data": {"resultType": "vector", "result": result}})
        elif path.startswith("/status/"):
            self._send(int(path.removeprefix("/status/")), b"as asked", "text/plain")
        elif path == "/redirect":
            self._send(302, b"", "text/plain", {"Location": "/health"})
        elif path.startswith("/bytes/"):
            self._send(200, b"x" * int(path.removeprefix("/bytes/")), "application/octet-stream")
        elif path.startswith("/slow/"):
            time.sleep(float(path.removeprefix("/slow/")))
            self._send(200, b"late", "text/plain")
        else:
            self._send(404, b"no such route", "text/plain")

    def do_POST(self):
        target, parts = self._record()
        if not parts.path.startswith("/effects/"):
            self._send(404, b"no such route", "text/plain")
            return
        status, answer, headers = target.apply_effect(parts.path, self.headers.get("Idempotency-Key"))
        delay = parse_qs(parts.query).get("delay", ["0"])[0]
        time.sleep(float(delay))
        self._send_json(status, answer, headers)

    do_PUT = do_PATCH = do_DELETE = do_POST

    def _record(self):
        target = self.server.target
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with target._lock:
            target.requests.append(RecordedRequest(self.command, self.path, dict(self.headers.items()), body))
        return target, urlsplit(self.path)

    def _send_json(self, status: int, payload: dict, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json", headers)

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # many steps call at once; the default (5) drops connections, retried 1 s later
    target: TargetServer

    def handle_error(self, request, client_address):
        """A client that gave up (a timeout test) is expected; anything else is shown."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@dataclass(frozen=True)
class TlsFiles:
    ca_file: Path
    cert_file: Path
    key_file: Path


@contextmanager
def running_target_server(tls: TlsFiles | None = None) -> Iterator[TargetServer]:
    """A target server on 127.0.0.1 and a free port, in a thread, for the duration of the block."""
    server = _Server(("127.0.0.1", 0), _Handler)
    if tls:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(tls.cert_file, tls.key_file)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    server.target = TargetServer(port=server.server_address[1], scheme="https" if tls else "http")
    thread = threading.Thread(target=server.serve_forever, name="target-server", daemon=True)
    thread.start()
    try:
        yield server.target
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


async def _serve_effect(target: TargetServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """One request on one connection: the effects route as ``_Handler.do_POST`` answers it."""
    try:
        method, path, _ = (await reader.readline()).decode("latin-1").split(" ", 2)
        headers = {}
        while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip()] = value.strip()
        lowered = {name.lower(): value for name, value in headers.items()}
        body = await reader.readexactly(int(lowered.get("content-length", 0)))
        with target._lock:
            target.requests.append(RecordedRequest(method, path, headers, body))
        parts = urlsplit(path)
        if parts.path.startswith("/effects/"):
            status, answer, extra = target.apply_effect(parts.path, lowered.get("idempotency-key"))
            await asyncio.sleep(float(parse_qs(parts.query).get("delay", ["0"])[0]))
        else:
            status, answer, extra = 404, {"error": "no such route"}, {}
        payload = json.dumps(answer).encode()
        head = [f"HTTP/1.1 {status} -", "Content-Type: application/json", f"Content-Length: {len(payload)}"]
        head += [f"{name}: {value}" for name, value in extra.items()] + ["Connection: close", "", ""]
        writer.write("\r\n".join(head).encode("latin-1") + payload)
        await writer.drain()
    except (ConnectionError, ValueError, asyncio.IncompleteReadError):
        pass  # a client that went away, or sent something that is not HTTP
    finally:
        writer.close()


@contextmanager
def running_effects_server() -> Iterator[TargetServer]:
    """The effects route alone (same state, same answers) on 127.0.0.1 and a free port, served by an asyncio
    loop in a thread for the duration of the block."""
    loop = asyncio.new_event_loop()
    target = TargetServer()
    server = loop.run_until_complete(
        asyncio.start_server(lambda r, w: _serve_effect(target, r, w), "127.0.0.1", 0, backlog=1024)
    )
    target.port = server.sockets[0].getsockname()[1]
    thread = threading.Thread(target=loop.run_forever, name="effects-server", daemon=True)
    thread.start()
    try:
        yield target
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        server.close()
        loop.close()


@pytest.fixture
def target_server() -> Iterator[TargetServer]:
    with running_target_server() as target:
        yield target


def make_tls_files(directory: Path, host_name: str) -> TlsFiles:
    """A throw-away CA and a server certificate it signed for ``host_name``, written as PEM files."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "RDM test CA")])
    ca_cert = (
        _certificate_builder(ca_name, ca_name, ca_key.public_key(), now)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        _certificate_builder(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host_name)]), ca_name, server_key.public_key(), now
        )
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host_name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    files = TlsFiles(directory / "ca.pem", directory / "server.pem", directory / "server-key.pem")
    files.ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.cert_file.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    files.key_file.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return files


def _certificate_builder(subject, issuer, public_key, now) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
    )


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        encipher_only=False,
        decipher_only=False,
    )


@pytest.fixture
def local_outbound(settings):
    """Outbound HTTP may reach the target servers on this machine (loopback, by name or address)."""
    settings.OUTBOUND_ALLOWED_HOSTS = ["localhost", "127.0.0.1"]
    settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS = True
