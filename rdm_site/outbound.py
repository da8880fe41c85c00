"""Outbound HTTP to allowed hosts only, so that a deployment step cannot be aimed at the inside of our network.

Settings (from the environment, see rdm_site/settings.py):

- ``OUTBOUND_ALLOWED_HOSTS``: host names (``jenkins.example.com``) or patterns (``*.example.com``, any
  subdomain but not ``example.com`` itself). Empty means nothing is allowed. IP literals are matched as written.
- ``OUTBOUND_ALLOW_PRIVATE_NETWORKS``: allow private, loopback and link-local addresses (default off).
  Multicast, reserved and unspecified addresses are always refused: no HTTP service lives there.
- ``OUTBOUND_CA_BUNDLE``: a PEM file of trusted CAs for HTTPS; empty means the system's trust store.

How a request goes out: the URL's host must be allowed; the name is resolved once; EVERY address it resolves
to is checked, and the request is refused if any one is disallowed (a name that mixes public and internal
addresses is treated as hostile rather than trusted for its public half). The connection is then made to
those checked addresses, in order, never to a second resolution, so DNS rebinding cannot swap the address
between the check and the connection. HTTPS connects to the address but sends the original name for SNI
and verifies the certificate against it; the Host header is always the URL's host. Redirects are not
followed (a 3xx is returned as is), and at most ``MAX_BODY_BYTES`` of the body are read.
"""

from __future__ import annotations

import http.client
import ipaddress
import json as jsonlib
import socket
import ssl
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings

MAX_BODY_BYTES = 1024 * 1024
DEFAULT_PORTS = {"http": 80, "https": 443}
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class OutboundError(Exception):
    """Base of the outbound errors."""


class OutboundRefused(OutboundError):
    """The request was not sent: our policy forbids it. Retrying will not help."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class OutboundFailed(OutboundError):
    """The request was allowed but did not complete (resolution, connection, TLS, timeout): may be transient."""


@dataclass(frozen=True)
class OutboundResponse:
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes
    elapsed: float  # seconds
    truncated: bool = field(default=False)  # the body was longer than MAX_BODY_BYTES and was cut there

    def json(self) -> Any:
        return jsonlib.loads(self.body)


def host_allowed(host: str, patterns: list[str]) -> bool:
    """Exact names, or ``*.suffix`` for any subdomain of suffix; case and a trailing dot do not matter."""
    host = host.lower().rstrip(".")
    for pattern in (pattern.lower().rstrip(".") for pattern in patterns):
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]):
                return True
        elif host == pattern:
            return True
    return False


def address_problem(address: IPAddress, *, allow_private: bool) -> str | None:
    """Why an address may not be connected to, or None when it may."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    if address.is_multicast or address.is_reserved or address.is_unspecified:
        return f"{address} is a multicast, reserved or unspecified address"
    if allow_private:
        return None
    if address.is_loopback:
        return f"{address} is a loopback address"
    if address.is_link_local:
        return f"{address} is a link-local address"
    if not address.is_global:
        return f"{address} is a private address"
    return None


def outbound_request(
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    json: Any = None,
    data: bytes | str | None = None,
    timeout: float = 10.0,
) -> OutboundResponse:
    """Send one HTTP request under the outbound policy; ``timeout`` applies to each network operation."""
    if json is not None and data is not None:
        raise ValueError("pass json or data, not both")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise OutboundRefused(f"scheme {scheme or '(none)'!r} is not http or https")
    if parts.username is not None or parts.password is not None:
        raise OutboundRefused("credentials in the URL are not allowed; send them in a header")
    host = _ascii_host(parts.hostname)
    if not host_allowed(host, settings.OUTBOUND_ALLOWED_HOSTS):
        raise OutboundRefused(f"host {host!r} is not in OUTBOUND_ALLOWED_HOSTS")
    try:
        port = parts.port or DEFAULT_PORTS[scheme]
    except ValueError as error:
        raise OutboundRefused(f"invalid port: {error}") from None
    addresses = _resolve_and_check(host, port)

    request_headers = {name: value for name, value in (headers or {}).items() if name.lower() != "host"}
    body = data.encode() if isinstance(data, str) else data
    if json is not None:
        body = jsonlib.dumps(json).encode()
        if not any(name.lower() == "content-type" for name in request_headers):
            request_headers["Content-Type"] = "application/json"
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")

    if scheme == "https":
        connection = _PinnedHTTPSConnection(host, port, addresses, timeout, _tls_context())
    else:
        connection = _PinnedHTTPConnection(host, port, addresses, timeout)
    started = time.monotonic()
    try:
        connection.request(method.upper(), target, body=body, headers=request_headers)
        response = connection.getresponse()
        payload = response.read(MAX_BODY_BYTES + 1)
    except http.client.InvalidURL as error:
        raise OutboundRefused(f"invalid request: {error}") from None
    except (OSError, http.client.HTTPException) as error:  # TLS errors too, although they are also ValueErrors
        raise OutboundFailed(f"{method.upper()} {host}:{port} failed: {error or type(error).__name__}") from error
    except ValueError as error:  # a method or header that would break the request, refused before sending
        raise OutboundRefused(f"invalid request: {error}") from None
    finally:
        connection.close()
    return OutboundResponse(
        status=response.status,
        headers={name.lower(): value for name, value in response.getheaders()},
        body=payload[:MAX_BODY_BYTES],
        elapsed=time.monotonic() - started,
        truncated=len(payload) > MAX_BODY_BYTES,
    )


def _ascii_host(hostname: str | None) -> str:
    if not hostname:
        raise OutboundRefused("the URL has no host")
    try:
        return hostname.encode("idna").decode("ascii").lower().rstrip(".")
    except UnicodeError:
        raise OutboundRefused(f"host {hostname!r} is not a valid name") from None


def _resolve_and_check(host: str, port: int) -> list[str]:
    """Resolve once and check every address; the returned addresses are the only ones connected to."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except OSError as error:
        raise OutboundFailed(f"cannot resolve {host}: {error}") from error
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not addresses:
        raise OutboundFailed(f"{host} resolves to no address")
    allow_private = settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS
    for address in addresses:
        problem = address_problem(ipaddress.ip_address(address.partition("%")[0]), allow_private=allow_private)
        if problem:
            raise OutboundRefused(f"{host} resolves to {problem}")
    return addresses


def _tls_context() -> ssl.SSLContext:
    return ssl.create_default_context(cafile=settings.OUTBOUND_CA_BUNDLE or None)


def _connect_to_first(addresses: list[str], port: int, timeout: float) -> socket.socket:
    """Like socket.create_connection, but over addresses already checked, without resolving again."""
    last_error: OSError | None = None
    for address in addresses:
        try:
            return socket.create_connection((address, port), timeout)
        except OSError as error:
            last_error = error
    raise last_error


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Keeps ``host`` for the Host header while connecting to the checked addresses."""

    def __init__(self, host: str, port: int, addresses: list[str], timeout: float):
        super().__init__(host, port, timeout=timeout)
        self.addresses = addresses

    def connect(self) -> None:
        self.sock = _connect_to_first(self.addresses, self.port, self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """Connects to the checked addresses; SNI and certificate verification use the host name."""

    def __init__(self, host: str, port: int, addresses: list[str], timeout: float, context: ssl.SSLContext):
        super().__init__(host, port, timeout=timeout, context=context)
        self.addresses = addresses
        self.tls_context = context

    def connect(self) -> None:
        sock = _connect_to_first(self.addresses, self.port, self.timeout)
        try:
            self.sock = self.tls_context.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise
