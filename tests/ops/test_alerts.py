"""alert:error_spike: the windowed counter on a fake clock, then once through a real server whose route raises."""

from __future__ import annotations

import json

import httpx

from app.ops.alerts import ErrorSpikeCounter, is_counted
from tests.conftest import start_server


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_it_alerts_once_when_the_threshold_is_reached_within_the_window():
    clock = Clock()
    counter = ErrorSpikeCounter(threshold=12, window_seconds=300, clock=clock)
    raised = []
    for _ in range(20):
        raised.append(counter.record_error())
        clock.now += 10
    assert raised[:11] == [None] * 11
    assert raised[11] == 12  # the 12th error within 300 s
    assert raised[12:] == [None] * 8  # not again within the window


def test_it_alerts_again_only_after_a_whole_window():
    clock = Clock()
    counter = ErrorSpikeCounter(threshold=3, window_seconds=60, clock=clock)
    assert [counter.record_error() for _ in range(3)] == [None, None, 3]
    clock.now += 59
    assert [counter.record_error() for _ in range(3)] == [None, None, None]
    clock.now += 1
    assert counter.record_error() == 3


def test_it_does_not_alert_on_errors_spread_wider_than_the_window():
    clock = Clock()
    counter = ErrorSpikeCounter(threshold=3, window_seconds=60, clock=clock)
    results = []
    for _ in range(10):
        results.append(counter.record_error())
        clock.now += 31  # two errors per 60 s at most
    assert results == [None] * 10


def test_it_counts_server_errors_but_not_maintenance_or_refusals():
    assert [is_counted(s) for s in (500, 502, 504, 503, 404, 409, 200)] == [True, True, True, False, False, False,
                                                                          False]


def test_it_logs_alert_error_spike_from_a_live_server():
    server = start_server("error-spike", BENCH_REFERENCE_ENDPOINT="true", ERROR_SPIKE_THRESHOLD="3",
                          ERROR_SPIKE_WINDOW_SECONDS="600")
    try:
        statuses = [httpx.get(f"{server.url}/_bench/error", timeout=10).status_code for _ in range(5)]
        assert statuses == [500] * 5
        assert httpx.get(f"{server.url}/no-such-page", timeout=10).status_code == 404
        server.stop()
        lines = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    finally:
        server.stop()
    alerts = [line for line in lines if line.get("event") == "alert:error_spike"]
    assert len(alerts) == 1, alerts  # the 3rd error raised it; the 4th and 5th fall in the same window
    assert (alerts[0]["errors"], alerts[0]["window_seconds"], alerts[0]["threshold"]) == (3, 600, 3)
    assert alerts[0]["last_path"] == "/_bench/error"
    assert alerts[0]["level"] == "error"
    assert len([line for line in lines if line.get("event") == "unhandled_error"]) == 5
