import os
import subprocess

import pytest

from app.settings import SettingsError, load_settings
from tests.conftest import BIN, ROOT

STRONG = "k" * 48
STRIPE = {"STRIPE_SECRET_KEY": "sk_test_" + "s" * 24, "STRIPE_WEBHOOK_SECRET": "whsec_" + "w" * 24}


def test_it_refuses_to_start_in_production_without_a_secret(tmp_path):
    with pytest.raises(SettingsError, match="SECRET_KEY is required in production"):
        load_settings({"COURSEWRIGHT_ENV": "production", "DATABASE_URL": "postgresql://db/x",
                       "DATA_DIR": str(tmp_path)})
    with pytest.raises(SettingsError, match="at least 32 characters"):
        load_settings({"COURSEWRIGHT_ENV": "production", "SECRET_KEY": "short-but-set",
                       "DATABASE_URL": "postgresql://db/x", "DATA_DIR": str(tmp_path)})


def test_it_exits_non_zero_with_a_clear_message_from_the_cli(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    env.update(COURSEWRIGHT_ENV="production", DATA_DIR=str(tmp_path))
    result = subprocess.run([str(BIN / "coursewright"), "migrate"], env=env, cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2
    assert "Configuration error: SECRET_KEY is required in production" in result.stderr


def test_it_reads_secrets_from_files(tmp_path):
    secret_file = tmp_path / "secret"
    secret_file.write_text(STRONG + "\n")
    settings = load_settings({"COURSEWRIGHT_ENV": "production", "SECRET_KEY_FILE": str(secret_file),
                              "METRICS_TOKEN": STRONG, "DATABASE_URL": "postgresql://db/x", "DATA_DIR": str(tmp_path),
                              **STRIPE})
    assert settings.secret_key == STRONG
    assert settings.cookie_secure is True and settings.worker_in_process is False


def test_it_names_the_variable_that_does_not_parse(tmp_path):
    base = {"DATA_DIR": str(tmp_path)}
    with pytest.raises(SettingsError, match="PORT must be an integer"):
        load_settings({**base, "PORT": "eighty"})
    with pytest.raises(SettingsError, match="MAINTENANCE_MODE must be a boolean"):
        load_settings({**base, "MAINTENANCE_MODE": "perhaps"})
    with pytest.raises(SettingsError, match="QUEUE_URL must start with"):
        load_settings({**base, "QUEUE_URL": "amqp://broker"})
    with pytest.raises(SettingsError, match="LOG_LEVEL must be one of"):
        load_settings({**base, "LOG_LEVEL": "loud"})
    with pytest.raises(SettingsError, match="SECRET_KEY_FILE points to"):
        load_settings({**base, "SECRET_KEY_FILE": str(tmp_path / "missing")})


def test_it_keeps_a_generated_development_secret_across_restarts(tmp_path):
    first = load_settings({"DATA_DIR": str(tmp_path)})
    second = load_settings({"DATA_DIR": str(tmp_path)})
    assert len(first.secret_key) >= 32 and first.secret_key == second.secret_key
    assert first.database_url is None and first.worker_in_process is True
