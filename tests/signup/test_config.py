from __future__ import annotations

import pytest

from signup.config import Settings, SettingsError

DB = {"SIGNUP_DATABASE_URL": "postgresql://u:p@127.0.0.1:5432/d"}


def test_defaults() -> None:
    settings = Settings.from_env(DB)
    assert settings.store == "postgres"
    assert settings.max_body_bytes == 64 * 1024
    assert (settings.pool_min, settings.pool_max) == (2, 10)
    assert settings.prepare_threshold == 5
    # Shedding by time, with the count only as a memory guard far above it.
    assert (settings.pool_wait_target_ms, settings.pool_wait_interval_ms) == (50, 1000)
    assert settings.pool_max_waiting == 2000


def test_reads_every_kind_of_value() -> None:
    settings = Settings.from_env(
        {
            **DB,
            "SIGNUP_POOL_MAX": " 25 ",
            "SIGNUP_POOL_TIMEOUT": "0.5",
            "SIGNUP_PREPARE_THRESHOLD": "none",
            "SIGNUP_STORE": "queue",
            "SIGNUP_REDIS_URL": "redis://127.0.0.1:6379/0",
            "SIGNUP_LOG_LEVEL": "DEBUG",
        }
    )
    assert settings.pool_max == 25
    assert settings.pool_timeout == 0.5
    assert settings.prepare_threshold is None
    assert settings.store == "queue"
    assert settings.log_level == "DEBUG"


def test_empty_values_mean_default() -> None:
    assert Settings.from_env({**DB, "SIGNUP_POOL_MAX": ""}).pool_max == 10


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"SIGNUP_POOL_MAX": "ten"}, "SIGNUP_POOL_MAX"),
        ({"SIGNUP_POOL_MAX": "0"}, "SIGNUP_POOL_MAX"),
        ({"SIGNUP_POOL_MIN": "-1"}, "SIGNUP_POOL_MIN"),
        ({"SIGNUP_POOL_MIN": "20", "SIGNUP_POOL_MAX": "5"}, "SIGNUP_POOL_MIN"),
        ({"SIGNUP_POOL_TIMEOUT": "nan"}, "SIGNUP_POOL_TIMEOUT"),
        ({"SIGNUP_POOL_TIMEOUT": "soon"}, "SIGNUP_POOL_TIMEOUT"),
        ({"SIGNUP_MAX_BODY_BYTES": "12"}, "SIGNUP_MAX_BODY_BYTES"),
        ({"SIGNUP_STORE": "mysql"}, "SIGNUP_STORE"),
        ({"SIGNUP_LOG_LEVEL": "LOUD"}, "SIGNUP_LOG_LEVEL"),
        ({"SIGNUP_PREPARE_THRESHOLD": "maybe"}, "SIGNUP_PREPARE_THRESHOLD"),
        ({"SIGNUP_DATABASE_URL": "mysql://x"}, "SIGNUP_DATABASE_URL"),
        ({"SIGNUP_DATABASE_URL": ""}, "SIGNUP_DATABASE_URL"),
        ({"SIGNUP_STORE": "queue"}, "SIGNUP_REDIS_URL"),
        ({"SIGNUP_STORE": "queue", "SIGNUP_REDIS_URL": "http://x"}, "SIGNUP_REDIS_URL"),
        ({"SIGNUP_POOL_WAIT_TARGET_MS": "0"}, "SIGNUP_POOL_WAIT_TARGET_MS"),
        ({"SIGNUP_POOL_WAIT_TARGET_MS": "soon"}, "SIGNUP_POOL_WAIT_TARGET_MS"),
        ({"SIGNUP_POOL_WAIT_TARGET_MS": "5000"}, "SIGNUP_POOL_WAIT_TARGET_MS"),
        ({"SIGNUP_POOL_WAIT_INTERVAL_MS": "5"}, "SIGNUP_POOL_WAIT_INTERVAL_MS"),
        ({"SIGNUP_POOL_MAX_WAITING": "-1"}, "SIGNUP_POOL_MAX_WAITING"),
        ({"SIGNUP_WRITER_BATCH_SIZE": "100000"}, "SIGNUP_WRITER_BATCH_SIZE"),
        ({"SIGNUP_WRITER_METRICS_PORT": "70000"}, "SIGNUP_WRITER_METRICS_PORT"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        Settings.from_env({**DB, **env})


def test_no_database_needed_without_persistence() -> None:
    assert Settings.from_env({"SIGNUP_STORE": "none"}).store == "none"


@pytest.mark.parametrize("off", ["off", "none", "OFF"])
def test_shedding_by_time_can_be_switched_off(off: str) -> None:
    settings = Settings.from_env({**DB, "SIGNUP_POOL_WAIT_TARGET_MS": off})
    assert settings.pool_wait_target_ms is None


def test_the_wait_target_must_leave_room_before_the_pool_timeout() -> None:
    env = {**DB, "SIGNUP_POOL_TIMEOUT": "0.5", "SIGNUP_POOL_WAIT_TARGET_MS": "400"}
    assert Settings.from_env(env).pool_wait_target_ms == 400
    too_late = r"SIGNUP_POOL_WAIT_TARGET_MS=500 .*SIGNUP_POOL_TIMEOUT"
    with pytest.raises(SettingsError, match=too_late):
        Settings.from_env({**env, "SIGNUP_POOL_WAIT_TARGET_MS": "500"})
