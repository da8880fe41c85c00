"""The embedded servers: private Unix sockets, idempotent start."""

import pytest

from rdm_site import embedded


@pytest.mark.skipif(not embedded.postgres_running(), reason="this session uses external servers")
def test_start_is_idempotent_while_the_servers_run():
    assert embedded.start() == embedded.Started(postgres=False, redis=False)
    assert embedded.postgres_running()
    assert embedded.redis_running()


def test_servers_listen_on_private_sockets_not_standard_ports():
    assert embedded.LAYOUT.postgres_socket.name == f".s.PGSQL.{embedded.POSTGRES_PORT}"
    assert embedded.POSTGRES_PORT != 5432
    assert embedded.redis_url(db=3) == f"unix://{embedded.LAYOUT.redis_socket}?db=3"
    assert len(str(embedded.LAYOUT.redis_socket)) <= 107
