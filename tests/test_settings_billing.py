"""Billing settings: production never sells without Stripe's secrets, and never gives courses away by accident."""

import pytest

from app.settings import SettingsError, load_settings
from tests.conftest import run_cli

STRONG = "k" * 48
KEY, HOOK = "sk_test_" + "s" * 24, "whsec_" + "w" * 24


def _production(tmp_path, **env: str) -> dict[str, str]:
    return {"COURSEWRIGHT_ENV": "production", "SECRET_KEY": STRONG, "METRICS_TOKEN": STRONG,
            "DATABASE_URL": "postgresql://db/x", "DATA_DIR": str(tmp_path), **env}


def test_it_refuses_production_without_the_stripe_secret_key(tmp_path):
    with pytest.raises(SettingsError, match="STRIPE_SECRET_KEY is required in production"):
        load_settings(_production(tmp_path, STRIPE_WEBHOOK_SECRET=HOOK))


def test_it_refuses_production_without_the_webhook_secret(tmp_path):
    with pytest.raises(SettingsError, match="STRIPE_WEBHOOK_SECRET is required in production"):
        load_settings(_production(tmp_path, STRIPE_SECRET_KEY=KEY))
    with pytest.raises(SettingsError, match="STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET are required"):
        load_settings(_production(tmp_path))


def test_it_reads_both_stripe_secrets_from_files(tmp_path):
    (tmp_path / "key").write_text(KEY + "\n")
    (tmp_path / "hook").write_text(HOOK + "\n")
    settings = load_settings(_production(tmp_path, STRIPE_SECRET_KEY_FILE=str(tmp_path / "key"),
                                         STRIPE_WEBHOOK_SECRET_FILE=str(tmp_path / "hook")))
    assert (settings.stripe_secret_key, settings.stripe_webhook_secret) == (KEY, HOOK)
    assert settings.billing_sandbox_mode is False


def test_it_refuses_an_empty_or_missing_secret_file(tmp_path):
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(SettingsError, match="STRIPE_WEBHOOK_SECRET is required in production"):
        load_settings(_production(tmp_path, STRIPE_SECRET_KEY=KEY, STRIPE_WEBHOOK_SECRET_FILE=str(tmp_path / "empty")))
    with pytest.raises(SettingsError, match="STRIPE_SECRET_KEY_FILE points to"):
        load_settings(_production(tmp_path, STRIPE_SECRET_KEY_FILE=str(tmp_path / "missing"),
                                  STRIPE_WEBHOOK_SECRET=HOOK))


def test_it_refuses_the_sandbox_in_production_unless_allowed(tmp_path):
    with pytest.raises(SettingsError, match="BILLING_SANDBOX_MODE is on in production"):
        load_settings(_production(tmp_path, BILLING_SANDBOX_MODE="true", STRIPE_SECRET_KEY=KEY,
                                  STRIPE_WEBHOOK_SECRET=HOOK))
    demo = load_settings(_production(tmp_path, BILLING_SANDBOX_MODE="true",
                                     BILLING_SANDBOX_ALLOWED_IN_PRODUCTION="true"))
    assert demo.billing_sandbox_mode is True and demo.stripe_secret_key is None


def test_it_refuses_malformed_keys(tmp_path):
    with pytest.raises(SettingsError, match="STRIPE_SECRET_KEY must be a Stripe secret"):
        load_settings(_production(tmp_path, STRIPE_SECRET_KEY="pk_test_publishable", STRIPE_WEBHOOK_SECRET=HOOK))
    with pytest.raises(SettingsError, match="STRIPE_WEBHOOK_SECRET must be a webhook signing secret"):
        load_settings(_production(tmp_path, STRIPE_SECRET_KEY=KEY, STRIPE_WEBHOOK_SECRET="s3cret"))
    with pytest.raises(SettingsError, match="BILLING_SANDBOX_MODE must be a boolean"):
        load_settings({"DATA_DIR": str(tmp_path), "BILLING_SANDBOX_MODE": "sometimes"})
    with pytest.raises(SettingsError, match="STRIPE_API_BASE"):
        load_settings({"DATA_DIR": str(tmp_path), "STRIPE_API_BASE": "ftp://stripe.example"})


def test_it_defaults_the_sandbox_on_in_development(tmp_path):
    settings = load_settings({"DATA_DIR": str(tmp_path)})
    assert settings.billing_sandbox_mode is True
    assert settings.stripe_secret_key is None and settings.stripe_webhook_secret is None
    assert load_settings({"DATA_DIR": str(tmp_path), "BILLING_SANDBOX_MODE": "false"}).billing_sandbox_mode is False


def test_it_exits_non_zero_naming_the_missing_stripe_secret(tmp_path):
    result = run_cli({"COURSEWRIGHT_ENV": "production", "SECRET_KEY": STRONG, "METRICS_TOKEN": STRONG,
                      "DATA_DIR": str(tmp_path), "BILLING_SANDBOX_MODE": "false", "STRIPE_SECRET_KEY": KEY,
                      "STRIPE_WEBHOOK_SECRET": ""}, "migrate", timeout=60)
    assert result.returncode == 2, result.stderr
    assert "Configuration error: STRIPE_WEBHOOK_SECRET is required in production" in result.stderr
