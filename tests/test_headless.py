from __future__ import annotations

import signal

import pytest

from tests.desk_process import DeskProcess


@pytest.fixture
def desk(tmp_path):
    d = DeskProcess(tmp_path)
    yield d
    d.kill()


def test_headless_desk_publishes_prices_and_stops_cleanly_on_sigterm(desk):
    desk.wait_log(lambda r: r.get("msg") == "desk running")
    seen: dict[str, list[int]] = {}

    def price(ev):
        if ev["event"] == "PriceTick":
            seen.setdefault(ev["symbol"], []).append(ev["seq"])
        return all(len(v) >= 3 for v in seen.values()) and set(seen) == {"BTC-USD", "ETH-USD"}

    desk.wait_event(price)
    for seqs in seen.values():
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    desk.signal(signal.SIGTERM)
    assert desk.proc.wait(20) == 0
    msgs = [line for line in desk.stderr_lines if '"msg":"desk stopped"' in line]
    assert msgs, "".join(desk.stderr_lines)
    assert not any("Traceback" in line for line in desk.stderr_lines)


def test_headless_logs_are_json_lines_with_status(tmp_path):
    d = DeskProcess(tmp_path, env={"OPDESK_DESK__STATUS_INTERVAL": "0.2"})
    try:
        status = d.wait_log(lambda r: r.get("msg") == "status")
        assert status["level"] == "INFO" and status["status"]["desk"] == "demo"
        assert "sim-prices" in status["status"]["engines"]
        assert status["ts"].endswith("Z")
    finally:
        assert d.stop() == 0


def test_sigint_also_stops_cleanly(desk):
    desk.wait_log(lambda r: r.get("msg") == "desk running")
    desk.signal(signal.SIGINT)
    assert desk.proc.wait(20) == 0
