"""A small closed-loop HTTP load generator: N keep-alive connections, each sending the next
request as soon as the previous answer arrives, for a fixed time. Bounded in time and count."""

from __future__ import annotations

import http.client
import threading
import time
from dataclasses import dataclass


@dataclass
class LoadResult:
    requests: int
    errors: int
    seconds: float
    latencies: list[float]

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))] * 1000 if ordered else float("nan")


def run_load(
    host: str,
    port: int,
    path: str,
    *,
    cookie: str = "",
    connections: int = 8,
    seconds: float = 8.0,
    extra_headers: dict[str, str] | None = None,
) -> LoadResult:
    deadline = time.monotonic() + seconds
    lock = threading.Lock()
    totals = {"requests": 0, "errors": 0}
    latencies: list[float] = []
    headers = {"Cookie": cookie, "Accept": "application/json, text/html"} if cookie else {}
    headers.update(extra_headers or {})

    def client() -> None:
        connection = http.client.HTTPConnection(host, port, timeout=30)
        done = errors = 0
        mine: list[float] = []
        while time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                connection.request("GET", path, headers=headers)
                response = connection.getresponse()
                response.read()
                ok = response.status == 200
            except (OSError, http.client.HTTPException):
                connection.close()
                connection = http.client.HTTPConnection(host, port, timeout=30)
                ok = False
            mine.append(time.perf_counter() - started)
            done += ok
            errors += not ok
        connection.close()
        with lock:
            totals["requests"] += done
            totals["errors"] += errors
            latencies.extend(mine)

    started = time.monotonic()
    threads = [threading.Thread(target=client) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return LoadResult(totals["requests"], totals["errors"], time.monotonic() - started, latencies)
