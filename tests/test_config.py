"""Settings: defaults from the deployment document, clear errors naming the variable, no leaked secrets."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from evaluator.config import Settings, env_name, load_settings
from evaluator.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def test_defaults_follow_the_deployment_document() -> None:
    s = load_settings({}, dotenv_path=None)
    assert s.master_model_name == "gpt-4o-mini"
    assert s.master_max_new_tokens == 512
    assert s.master_temperature == 0.2
    assert s.data_path == Path("data/Q&A_db_practice.json")
    assert s.log_path == Path("data/evaluations_log.jsonl")
    assert s.sentiment_model_name == "distilbert-base-uncased-finetuned-sst-2-english"
    assert s.effective_judge_backend == "offline"


def test_values_are_parsed_and_typed() -> None:
    s = load_settings(
        {"MASTER_TEMPERATURE": "0.7", "MASTER_MAX_NEW_TOKENS": "256", "PII_SCRUBBING": "off", "OPENAI_API_KEY": "k"},
        dotenv_path=None,
    )
    assert (s.master_temperature, s.master_max_new_tokens, s.pii_scrubbing) == (0.7, 256, False)
    assert s.effective_judge_backend == "openai"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MASTER_TEMPERATURE", "hot"),
        ("MASTER_TEMPERATURE", "5"),
        ("MASTER_MAX_NEW_TOKENS", "lots"),
        ("MASTER_MAX_NEW_TOKENS", "0"),
        ("JUDGE_BACKEND", "gpt"),
        ("PII_SCRUBBING", "maybe"),
        ("HF_PUSH_EVERY_MINUTES", "nan"),
    ],
)
def test_bad_value_names_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings({name: value}, dotenv_path=None)


def test_inconsistent_settings_are_rejected() -> None:
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        load_settings({"JUDGE_BACKEND": "openai"}, dotenv_path=None)
    with pytest.raises(ConfigError, match="HF_TOKEN"):
        load_settings({"HF_LOG_REPO": "me/logs"}, dotenv_path=None)
    with pytest.raises(ConfigError, match="APP_PASSWORD"):
        load_settings({"APP_USERNAME": "admin"}, dotenv_path=None)


def test_dotenv_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("MASTER_MODEL_NAME=gpt-4.1-mini\nMASTER_TEMPERATURE=0.5\n")
    s = load_settings({"MASTER_TEMPERATURE": "0.1"}, dotenv_path=env_file)
    assert s.master_model_name == "gpt-4.1-mini"
    assert s.master_temperature == 0.1


def test_secrets_never_appear_in_repr_or_errors() -> None:
    secret = "sk-test-SECRET-0123456789"
    s = load_settings({"OPENAI_API_KEY": secret, "HF_TOKEN": "hf_SECRET", "HF_LOG_REPO": "me/logs"}, dotenv_path=None)
    assert secret not in repr(s) and "hf_SECRET" not in repr(s)
    with pytest.raises(ConfigError) as info:
        load_settings({"OPENAI_API_KEY": secret, "MASTER_TEMPERATURE": "x"}, dotenv_path=None)
    assert secret not in str(info.value)


def test_env_example_lists_every_setting() -> None:
    example = (ROOT / ".env.example").read_text()
    names = {line.split("=", 1)[0] for line in example.splitlines() if "=" in line and not line.startswith("#")}
    assert {env_name(f.name) for f in fields(Settings)} <= names
    # And the example itself is a valid configuration.
    assert load_settings({}, dotenv_path=ROOT / ".env.example").master_model_name == "gpt-4o-mini"


def test_a_dotenv_that_is_not_utf8_is_a_clear_config_error(tmp_path: Path) -> None:
    # Saved as Latin-1 by an editor: it used to end in a UnicodeDecodeError traceback.
    env_file = tmp_path / ".env"
    env_file.write_bytes("OPENAI_API_KEY=sk-café-SECRET\nMASTER_TEMPERATURE=0.5\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"\.env.*UTF-8") as info:
        load_settings({}, dotenv_path=env_file)
    assert "SECRET" not in str(info.value)


@pytest.mark.parametrize("value", ["localhost:8000/v1", "not a url", "ftp://host/v1", "http://[::1", "http:///v1"])
@pytest.mark.parametrize("name", ["OPENAI_BASE_URL", "CANDIDATE_BASE_URL"])
def test_a_base_url_that_is_not_http_names_the_variable(name: str, value: str) -> None:
    # "localhost:8000/v1" used to fail only at the first grading ("Could not connect to the judge API at None"),
    # and "http://[::1" with a traceback.
    with pytest.raises(ConfigError, match=name):
        load_settings({name: value}, dotenv_path=None)
    for good in ("http://localhost:8000/v1", "https://api.example.com/v1", "http://[::1]:8080/v1"):
        assert getattr(load_settings({name: good}, dotenv_path=None), name.lower()) == good
    with pytest.raises(ConfigError) as info:
        load_settings({name: "htp://user:s3cret-pass@host/v1"}, dotenv_path=None)
    assert "s3cret" not in str(info.value)
