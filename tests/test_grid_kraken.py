from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from engines.grid.kraken import CandleCache, KrakenError, KrakenOHLC

T0 = 1_700_000_000


def candle(t: int) -> list:
    px = 100 + (t - T0) // 60
    return [t, f"{px}.0", f"{px + 1}.5", f"{px - 1}.5", f"{px}.5", f"{px}.2", "1.25", 7]


class Server:
    """A real HTTP server on 127.0.0.1 port 0 serving Kraken-format OHLC pages of 3 candles; a script
    of canned answers (status, body, headers) is served first."""

    def __init__(self, total: int = 10) -> None:
        self.script: list[tuple[int, object, dict]] = []
        self.seen: list[dict] = []
        self.total = total
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                url = urlparse(self.path)
                qs = {k: v[0] for k, v in parse_qs(url.query).items()}
                outer.seen.append({"path": url.path, **qs})
                if outer.script:
                    status, body, headers = outer.script.pop(0)
                else:
                    since = int(qs.get("since", T0 - 60))
                    times = [T0 + 60 * i for i in range(outer.total)]
                    rows = [candle(t) for t in times if t > since][:3]
                    last = rows[-1][0] if rows else since
                    status, body, headers = 200, {"error": [], "result": {"XXBTZUSD": rows, "last": last}}, {}
                data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


@pytest.fixture
def fetcher(server, tmp_path):
    sleeps: list[float] = []
    f = KrakenOHLC(CandleCache(tmp_path / "candles.sqlite"), base_url=server.url, sleep=sleeps.append,
                   max_retries=3, backoff=0.5)
    f.sleeps = sleeps
    yield f
    f.close()
    f.cache.close()


def test_pages_are_fetched_and_cached(server, fetcher, tmp_path):
    s = fetcher.history("XBTUSD", 1, since=T0 - 60, until=T0 + 9 * 60)
    assert len(s) == 10
    assert s.time[0] == T0 and s.close[0] == 100.5 and s.high[9] == 110.5 and s.low[0] == 99.5
    assert [q.get("since") for q in server.seen] == [str(T0 - 60), str(T0 + 120), str(T0 + 300), str(T0 + 480)]
    assert all(q["path"] == "/0/public/OHLC" and q["pair"] == "XBTUSD" and q["interval"] == "1" for q in server.seen)
    # the range is cached now: a second request (even from a new fetcher on the same file) needs no network
    n = len(server.seen)
    again = KrakenOHLC(CandleCache(tmp_path / "candles.sqlite"), base_url=server.url)
    s2 = again.history("XBTUSD", 1, since=T0, until=T0 + 9 * 60)
    assert len(server.seen) == n and list(s2.close) == list(s.close)
    again.close()


def test_http_429_and_kraken_rate_limit_are_retried_with_backoff(server, fetcher):
    server.script = [
        (429, "slow down", {"Retry-After": "2"}),
        (200, {"error": ["EAPI:Rate limit exceeded"], "result": {}}, {}),
        (503, "maintenance", {}),
    ]
    rows, last = fetcher.page("XBTUSD", 1, T0 - 60)
    assert [r[0] for r in rows] == [T0, T0 + 60, T0 + 120] and last == T0 + 120
    # Retry-After honoured, then exponential backoff 0.5·2^1, 0.5·2^2
    assert fetcher.sleeps == [2.0, 1.0, 2.0]
    assert fetcher.requests == 4 and fetcher.retries == 3


def test_gives_up_after_the_retry_budget(server, fetcher):
    server.script = [(429, "no", {})] * 4
    with pytest.raises(KrakenError, match="gave up after 4 attempts: HTTP 429"):
        fetcher.page("XBTUSD", 1)
    assert fetcher.sleeps == [0.5, 1.0, 2.0]


def test_other_errors_are_raised_at_once(server, fetcher):
    server.script = [(200, {"error": ["EQuery:Unknown asset pair"]}, {})]
    with pytest.raises(KrakenError, match="EQuery:Unknown asset pair"):
        fetcher.page("NOPE", 1)
    server.script = [(404, "not here", {})]
    with pytest.raises(KrakenError, match="HTTP 404"):
        fetcher.page("XBTUSD", 1)
    server.script = [(200, "<html>", {})]
    with pytest.raises(KrakenError, match="not JSON"):
        fetcher.page("XBTUSD", 1)
    assert fetcher.sleeps == []


def test_connection_refused_is_retried_then_raised(tmp_path):
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    sleeps: list[float] = []
    f = KrakenOHLC(CandleCache(tmp_path / "c.sqlite"), base_url=f"http://127.0.0.1:{port}", sleep=sleeps.append,
                   max_retries=2, backoff=0.1)
    with pytest.raises(KrakenError, match="transport error"):
        f.page("XBTUSD", 1)
    assert sleeps == [0.1, 0.2]
    f.close()
