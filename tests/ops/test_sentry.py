"""Optional Sentry: strict settings, and the real sentry-sdk in a real server sending to a fake Sentry on loopback
(the SDK's own transport, envelope and compression run; only the receiving end is ours)."""

from __future__ import annotations

import gzip
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import brotli
import httpx
import pytest

from app.settings import SettingsError, load_settings
from tests.conftest import run_cli, start_server


class FakeSentry:
    """Keeps every envelope item POSTed to /api/<project>/envelope/."""

    def __init__(self) -> None:
        self.items: list[dict] = []
        self.paths: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                encoding = self.headers.get("content-encoding", "")
                body = gzip.decompress(body) if encoding == "gzip" else brotli.decompress(body) if encoding == "br" \
                    else body
                fake.paths.append(self.path)
                for line in body.splitlines():
                    try:
                        fake.items.append(json.loads(line))
                    except ValueError:
                        pass
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.http.server_address[1]
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def events(self) -> list[dict]:
        return [item for item in self.items if "event_id" in item and ("exception" in item or "message" in item
                                                                        or "logentry" in item)]

    def wait_for(self, predicate, timeout: float = 20) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if found := [event for event in self.events() if predicate(event)]:
                return found
            time.sleep(0.1)
        raise AssertionError(f"no such event reached the fake Sentry: {self.items}")


@pytest.fixture
def fake_sentry():
    fake = FakeSentry()
    yield fake
    fake.http.shutdown()


@pytest.mark.parametrize("dsn", ["not-a-dsn", "ftp://key@sentry.example/1", "https://sentry.example/1",
                                 "https://key@sentry.example/project"])
def test_it_refuses_a_malformed_dsn(dsn):
    with pytest.raises(SettingsError, match="SENTRY_DSN must look like"):
        load_settings({"SENTRY_DSN": dsn})


def test_it_refuses_a_release_or_environment_with_spaces():
    dsn = "https://abc123@sentry.example/42"
    with pytest.raises(SettingsError, match="SENTRY_RELEASE"):
        load_settings({"SENTRY_DSN": dsn, "SENTRY_RELEASE": "coursewright 1.0"})
    with pytest.raises(SettingsError, match="SENTRY_ENVIRONMENT"):
        load_settings({"SENTRY_DSN": dsn, "SENTRY_ENVIRONMENT": "prod/eu"})
    with pytest.raises(SettingsError, match="SENTRY_TRACES_SAMPLE_RATE"):
        load_settings({"SENTRY_DSN": dsn, "SENTRY_TRACES_SAMPLE_RATE": "2"})


def test_it_defaults_release_and_environment_and_stays_off_without_a_dsn():
    settings = load_settings({"SENTRY_DSN": "https://abc123@sentry.example/42"})
    assert (settings.sentry_environment, settings.sentry_release) == ("development", "coursewright@0.1.0")
    assert load_settings({}).sentry_dsn is None


def test_it_stops_a_process_at_start_with_a_bad_dsn():
    result = run_cli({"SENTRY_DSN": "https://sentry.example/1"}, "migrate")
    assert result.returncode == 2
    assert "Configuration error: SENTRY_DSN must look like" in result.stderr


def test_it_reports_an_unhandled_error_with_release_and_environment(fake_sentry):
    server = start_server("sentry", BENCH_REFERENCE_ENDPOINT="true", ERROR_SPIKE_THRESHOLD="2",
                          SENTRY_DSN=f"http://publickey@127.0.0.1:{fake_sentry.port}/42",
                          SENTRY_ENVIRONMENT="staging", SENTRY_RELEASE="coursewright@9.9.9-test")
    try:
        assert httpx.get(f"{server.url}/_bench/error", timeout=10).status_code == 500
        assert httpx.get(f"{server.url}/no-such-page", timeout=10).status_code == 404  # a refusal: not sent
        [event, *_] = fake_sentry.wait_for(lambda e: "exception" in e)
        assert event["release"] == "coursewright@9.9.9-test"
        assert event["environment"] == "staging"
        [exception] = [v for v in event["exception"]["values"] if v["type"] == "RuntimeError"]
        assert exception["value"] == "deliberate error from /_bench/error"
        assert fake_sentry.paths[0] == "/api/42/envelope/"
        # The second error reaches the threshold of 2: the alert:error_spike log line becomes an event titled so.
        assert httpx.get(f"{server.url}/_bench/error", timeout=10).status_code == 500
        [spike] = fake_sentry.wait_for(lambda e: (e.get("logentry") or {}).get("message") == "alert:error_spike")
        assert (spike["extra"]["errors"], spike["extra"]["threshold"]) == (2, 2)
        assert spike["release"] == "coursewright@9.9.9-test"
        assert "sentry_enabled" in server.log()
    finally:
        server.stop()
    assert not [e for e in fake_sentry.events() if "NotFound" in json.dumps(e) or "404" in e.get("message", "")]
