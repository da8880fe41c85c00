"""Outbound HTTP reaches allowed hosts only, at the address that was checked, and never follows redirects."""

import socket

import pytest

from rdm_site.outbound import MAX_BODY_BYTES, OutboundFailed, OutboundRefused, host_allowed, outbound_request
from tests.harness.target_server import make_tls_files, running_target_server

pytestmark = pytest.mark.usefixtures("local_outbound")


def test_allowed_host_is_reached_with_its_name_in_the_host_header(target_server):
    # given a target reachable as "localhost"
    # when it is called by name
    response = outbound_request("GET", target_server.url("/health"))

    # then it answers, and saw the name it was called by
    assert (response.status, response.body) == (200, b"ok")
    assert target_server.requests_to("/health")[0].headers["Host"] == f"localhost:{target_server.port}"


def test_host_not_in_the_allow_list_is_refused_before_anything_is_sent(target_server, settings):
    # given only another host is allowed
    settings.OUTBOUND_ALLOWED_HOSTS = ["jenkins.example.com"]

    # when the target is called
    with pytest.raises(OutboundRefused, match="not in OUTBOUND_ALLOWED_HOSTS"):
        outbound_request("GET", target_server.url("/health"))

    # then nothing reached it
    assert target_server.requests == []


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("jenkins.example.com", True),
        ("JENKINS.example.com.", True),
        ("a.b.cloud.example.net", True),
        ("cloud.example.net", False),
        ("evil-jenkins.example.com", False),
        ("jenkins.example.com.evil.org", False),
    ],
)
def test_allow_list_takes_exact_names_and_subdomain_patterns(host, allowed):
    # given exact names and a pattern, when a host is checked, then only those match
    assert host_allowed(host, ["jenkins.example.com", "*.cloud.example.net"]) is allowed


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_loopback_is_refused_when_private_networks_are_not_allowed(target_server, settings, host):
    # given an allowed host that resolves to loopback, with private networks not allowed
    settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS = False

    # when it is called
    with pytest.raises(OutboundRefused, match="loopback"):
        outbound_request("GET", target_server.url("/health", host=host))

    # then nothing reached it
    assert target_server.requests == []


def test_a_name_resolving_to_any_internal_address_is_refused(settings, monkeypatch):
    # given an allowed name that resolves to a public and a private address
    settings.OUTBOUND_ALLOWED_HOSTS = ["mixed.example.com"]
    settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS = False
    resolved = [("93.184.215.14", 80), ("10.0.0.7", 80)]
    lookups = []

    def getaddrinfo(host, port, *args, **kwargs):
        lookups.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", address) for address in resolved]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)

    # when it is called
    with pytest.raises(OutboundRefused, match=r"10\.0\.0\.7 is a private address"):
        outbound_request("GET", "http://mixed.example.com/")

    # then the name was resolved once, and refused for its private half
    assert lookups == ["mixed.example.com"]


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("file:///etc/passwd", "scheme 'file'"),
        ("ftp://localhost/", "scheme 'ftp'"),
        ("http://admin:secret@localhost/", "credentials in the URL"),
        ("http:///no-host", "no host"),
    ],
)
def test_urls_outside_plain_http_to_a_host_are_refused(url, reason):
    # given a URL that is not plain http(s) to a host, when it is called, then it is refused, saying why
    with pytest.raises(OutboundRefused, match=reason):
        outbound_request("GET", url)


def test_header_that_would_split_the_request_is_refused(target_server):
    # given a header value carrying a line break (say, from a variable), when sent, then it is refused unsent
    with pytest.raises(OutboundRefused, match="invalid request"):
        outbound_request("GET", target_server.url("/health"), headers={"X-Token": "a\r\nX-Admin: yes"})
    assert target_server.requests == []


def test_redirects_are_returned_not_followed(target_server):
    # given a route that redirects to /health
    # when it is called
    response = outbound_request("GET", target_server.url("/redirect"))

    # then the redirect comes back as is and /health was never asked
    assert response.status == 302
    assert response.headers["location"] == "/health"
    assert target_server.requests_to("/health") == []


def test_body_is_read_up_to_the_cap(target_server):
    # given a response larger than the cap
    # when it is fetched
    response = outbound_request("GET", target_server.url(f"/bytes/{MAX_BODY_BYTES + 100_000}"))

    # then the body stops at the cap and says it was cut
    assert len(response.body) == MAX_BODY_BYTES
    assert response.truncated


def test_slow_target_fails_with_a_timeout(target_server):
    # given a target slower than the timeout, when it is called, then the call fails (a transient failure)
    with pytest.raises(OutboundFailed, match="timed out"):
        outbound_request("GET", target_server.url("/slow/1"), timeout=0.2)


def test_json_body_is_sent_with_its_content_type(target_server):
    # given a JSON body
    # when it is posted
    outbound_request("POST", target_server.url("/effects/deploy"), json={"version": "1.2.3"})

    # then the target received it as JSON
    received = target_server.requests_to("/effects/deploy")[0]
    assert received.body == b'{"version": "1.2.3"}'
    assert received.headers["Content-Type"] == "application/json"


def test_https_connects_to_the_checked_address_and_verifies_the_certificate_for_the_name(tmp_path, settings):
    # given an HTTPS target on 127.0.0.1 whose certificate names "localhost", and its CA trusted
    tls = make_tls_files(tmp_path, "localhost")
    settings.OUTBOUND_CA_BUNDLE = str(tls.ca_file)
    with running_target_server(tls=tls) as target:
        # when it is called by name
        response = outbound_request("GET", target.url("/health"))

        # then the certificate was accepted for "localhost" although the connection went to the address
        assert response.status == 200

        # and when it is called by an address that the certificate does not name, it is refused
        with pytest.raises(OutboundFailed, match="certificate"):
            outbound_request("GET", target.url("/health", host="127.0.0.1"))
