"""Finding 6: /metrics only with the bearer token (required in production), and API docs without a CDN."""

import re

import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.settings import SettingsError, load_settings
from tests.conftest import start_server

TOKEN = "m" * 40
PRODUCTION = {"COURSEWRIGHT_ENV": "production", "SECRET_KEY": "s" * 40, "DATABASE_URL": "postgresql://db/x",
              "STRIPE_SECRET_KEY": "sk_live_" + "s" * 24, "STRIPE_WEBHOOK_SECRET": "whsec_" + "w" * 24}


def test_it_refuses_to_start_in_production_without_a_metrics_token(tmp_path):
    with pytest.raises(SettingsError, match="METRICS_TOKEN is required in production"):
        load_settings({**PRODUCTION, "DATA_DIR": str(tmp_path)})
    with pytest.raises(SettingsError, match="METRICS_TOKEN is required in production"):
        load_settings({**PRODUCTION, "DATA_DIR": str(tmp_path), "METRICS_TOKEN": "change-me"})
    with pytest.raises(SettingsError, match="METRICS_TOKEN must be at least 32 characters"):
        load_settings({**PRODUCTION, "DATA_DIR": str(tmp_path), "METRICS_TOKEN": "short"})


def test_it_reads_the_metrics_token_from_a_file(tmp_path):
    token_file = tmp_path / "metrics_token"
    token_file.write_text(TOKEN + "\n")
    settings = load_settings({**PRODUCTION, "DATA_DIR": str(tmp_path), "METRICS_TOKEN_FILE": str(token_file)})
    assert settings.metrics_token == TOKEN


def test_it_leaves_metrics_open_in_development_without_a_token(tmp_path):
    assert load_settings({"DATA_DIR": str(tmp_path)}).metrics_token is None


@pytest.fixture(scope="module")
def guarded_server(live_server):
    server = start_server("metrics-token", METRICS_TOKEN=TOKEN, WORKER_IN_PROCESS="false")
    yield server
    server.stop()


async def test_it_serves_metrics_only_with_the_bearer_token(client_factory, guarded_server):
    client = client_factory(guarded_server.url)
    missing = await client.get("/metrics")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert "coursewright_" not in missing.text
    wrong = await client.get("/metrics", headers={"authorization": "Bearer " + "x" * 40})
    assert wrong.status_code == 401
    assert (await client.get("/metrics", headers={"authorization": TOKEN})).status_code == 401
    scraped = await client.get("/metrics", headers={"authorization": f"Bearer {TOKEN}"})
    assert scraped.status_code == 200
    assert "coursewright_requests" in {f.name for f in text_string_to_metric_families(scraped.text)}
    assert (await client.get("/health/ready")).status_code == 200  # probes need no token


EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", re.I)


async def test_it_serves_the_api_docs_from_our_own_static_files(client):
    docs = await client.get("/schema")
    assert docs.status_code == 200
    assert not EXTERNAL.search(docs.text), docs.text
    assets = re.findall(r"""(?:src|href)="([^"]+)\"""", docs.text)
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in assets and "/static/api-docs.js" in assets
    for asset in assets:
        response = await client.get(asset)
        assert response.status_code == 200, asset
    assert "<script>" not in docs.text and "style=" not in docs.text  # the CSP would refuse both
    schema = await client.get("/schema/openapi.json")
    assert schema.status_code == 200 and schema.json()["info"]["title"] == "Coursewright"
