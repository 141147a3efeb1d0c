from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from runtime.logs import SecretMaskFilter, secret_values
from runtime.settings import Settings, load_settings, redact_url


def test_env_prefix_and_nested_delimiter(monkeypatch):
    monkeypatch.setenv("RACELAB_BROKER__BOOTSTRAP_SERVERS", "broker:19092")
    monkeypatch.setenv("RACELAB_TOPICS__PREFIX", "staging")
    monkeypatch.setenv("RACELAB_KRA__SERVICE_KEY", "k3y-value")
    settings = Settings()
    assert settings.broker.bootstrap_servers == "broker:19092"
    assert settings.topics.prefix == "staging"
    assert settings.kra.service_key.get_secret_value() == "k3y-value"
    assert "k3y-value" not in repr(settings)
    assert "k3y-value" not in str(settings.model_dump())


def test_env_beats_stack_file(tmp_path: Path, monkeypatch):
    env_file = tmp_path / "stack.env"
    env_file.write_text("RACELAB_BROKER__BOOTSTRAP_SERVERS=127.0.0.1:1111\nRACELAB_BROKER__IDEMPOTENCE=false\n")
    assert Settings(_env_file=env_file).broker.bootstrap_servers == "127.0.0.1:1111"
    monkeypatch.setenv("RACELAB_BROKER__BOOTSTRAP_SERVERS", "127.0.0.1:2222")
    settings = Settings(_env_file=env_file)
    assert settings.broker.bootstrap_servers == "127.0.0.1:2222"
    assert settings.broker.idempotence is False


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("RACELAB_LOG_LEVEL", "LOUD"),
        ("RACELAB_TOPICS__PREFIX", "has space"),
        ("RACELAB_KRA__PAGE_SIZE", "5000"),
        ("RACELAB_DATABASE__SCHEMA_NAME", "Robert'); DROP"),
    ],
)
def test_bad_values_fail_fast(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        Settings()


def test_settings_are_frozen():
    settings = Settings()
    with pytest.raises(ValidationError):
        settings.broker.bootstrap_servers = "x"  # type: ignore[misc]


def test_redact_url():
    assert redact_url("postgresql://u:s3cret@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert redact_url("postgresql://u@h/db") == "postgresql://u@h/db"
    assert redact_url("postgresql://u@h/db?password=s3cret&sslmode=disable") == (
        "postgresql://u@h/db?password=***&sslmode=disable"
    )
    settings = Settings(database={"url": SecretStr("postgresql://u@h/db?password=qp-secret-1")})
    assert "qp-secret-1" in secret_values(settings)
    settings = Settings(database={"url": SecretStr("postgresql://u:@h/db?password=qp-secret-2")})  # empty user part
    assert "qp-secret-2" in secret_values(settings)


def test_secret_mask_filter_masks_every_secret():
    import logging

    settings = Settings(
        database={"url": SecretStr("postgresql://u:dbpass99@h/db")},
        kra={"base_url": "http://x", "service_key": SecretStr("KRAKEY123")},
        alerts={"slack_webhook_url": SecretStr("https://hooks.example/T0/B0/XYZ")},
    )
    filt = SecretMaskFilter(secret_values(settings))
    record = logging.LogRecord(
        "t",
        logging.INFO,
        __file__,
        1,
        "key=%s pw=%s hook=%s",
        ("KRAKEY123", "dbpass99", "https://hooks.example/T0/B0/XYZ"),
        None,
    )
    assert filt.filter(record)
    assert record.getMessage() == "key=********** pw=********** hook=**********"


def test_secret_mask_filter_masks_tracebacks_and_shortens_retried_library_errors():
    import logging
    import sys

    filt = SecretMaskFilter(["KRAKEY123"])
    handler = logging.StreamHandler()

    def fail() -> None:
        raise ValueError("bad key KRAKEY123")

    try:
        fail()
    except ValueError:
        exc_info = sys.exc_info()
    record = logging.LogRecord("racelab.x", logging.ERROR, __file__, 1, "failed", (), exc_info)
    assert filt.filter(record)
    text = handler.format(record)
    assert "Traceback" in text and "bad key **********" in text and "KRAKEY123" not in text

    pool = logging.LogRecord("asyncpg.pool", logging.WARNING, __file__, 1, "floor; retrying", (), exc_info)
    assert filt.filter(pool)
    assert handler.format(pool) == "floor; retrying (ValueError: bad key **********)"


def test_faust_workers_put_the_mask_back_on_the_handlers_they_install(monkeypatch):
    import io
    import logging

    from mode.utils.logging import ExtensionFormatter

    from runtime.logs import guard_handlers

    root = logging.getLogger()
    out = io.StringIO()
    replaced = logging.StreamHandler(out)  # what a Faust worker installs at start, with its formatter
    replaced.setFormatter(ExtensionFormatter(out, fmt="%(name)s %(message)s"))
    monkeypatch.setattr(root, "handlers", [replaced])
    settings = Settings(kra={"base_url": "http://x", "service_key": SecretStr("KRAKEY123")})
    guard_handlers(settings)
    guard_handlers(settings)
    masks = [f for f in replaced.filters if isinstance(f, SecretMaskFilter)]
    assert len(masks) == 1 and masks[0].secrets == ["KRAKEY123"]
    try:
        raise ConnectionRefusedError(111, "refused KRAKEY123")
    except OSError:
        logging.getLogger("asyncpg.pool").warning("floor; retrying", exc_info=True)
        logging.getLogger("racelab.t").exception("call with %s failed", "KRAKEY123")
    text = out.getvalue()
    assert "Logging error" not in text and "KRAKEY123" not in text
    assert "asyncpg.pool floor; retrying (ConnectionRefusedError: [Errno 111] refused **********)" in text
    assert "racelab.t call with ********** failed" in text and "Traceback" in text


def test_one_name_for_the_home(tmp_path: Path, monkeypatch):
    """RACELAB_HOME moves the stack and is where every command finds its endpoints file."""
    (tmp_path / "stack.env").write_text("RACELAB_BROKER__BOOTSTRAP_SERVERS=127.0.0.1:4321\n")
    monkeypatch.setenv("RACELAB_HOME", str(tmp_path))
    settings = load_settings()
    assert settings.home == tmp_path.resolve()
    assert settings.broker.bootstrap_servers == "127.0.0.1:4321"
    monkeypatch.setenv("RACELAB_STACK__HOME", str(tmp_path / "elsewhere"))
    with pytest.raises(ValidationError, match="RACELAB_HOME"):
        load_settings()
