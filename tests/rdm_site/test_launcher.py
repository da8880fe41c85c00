"""Where ``make run`` serves: HOST and PORT from the environment."""

import pytest

from rdm_site.launcher import address_from_environment


def test_the_default_address_is_localhost_8000(monkeypatch):
    monkeypatch.delenv("HOST", raising=False)
    monkeypatch.delenv("PORT", raising=False)
    assert address_from_environment() == ("127.0.0.1", 8000)


def test_host_and_port_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("HOST", "192.0.2.10")
    monkeypatch.setenv("PORT", "8080")
    assert address_from_environment() == ("192.0.2.10", 8080)


@pytest.mark.parametrize("port", ["http", "0", "70000", "-1"])
def test_a_bad_port_stops_with_a_clear_message(monkeypatch, port):
    monkeypatch.setenv("PORT", port)
    with pytest.raises(SystemExit, match="PORT must be a port number from 1 to 65535"):
        address_from_environment()
