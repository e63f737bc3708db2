"""Settings: typed, frozen, read from KDREC_ variables; invalid values name the variable."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from core.settings import Settings, SettingsError, TrainConfig, load_settings


def test_environment_overrides_nested_values(monkeypatch):
    monkeypatch.setenv("KDREC_DATABASE_URL", "sqlite:///elsewhere.db")
    monkeypatch.setenv("KDREC_STUDENT__HIDDEN", "128")
    monkeypatch.setenv("KDREC_KAFKA__BOOTSTRAP_SERVERS", "broker:9092")
    config = load_settings()
    assert config.database_url == "sqlite:///elsewhere.db"
    assert config.student.hidden == 128
    assert config.kafka.client_options()["bootstrap_servers"] == ["broker:9092"]


def test_settings_are_frozen():
    config = load_settings()
    with pytest.raises(ValidationError):
        config.database_url = "x"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        config.student.hidden = 1  # type: ignore[misc]


def test_invalid_value_names_the_variable(monkeypatch):
    monkeypatch.setenv("KDREC_TRAIN__BATCH_SIZE", "lots")
    monkeypatch.setenv("KDREC_DISTILL__ALPHA", "2")
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert "KDREC_TRAIN__BATCH_SIZE" in str(info.value)
    assert "KDREC_DISTILL__ALPHA" in str(info.value)


def test_security_options_pass_through(monkeypatch):
    monkeypatch.setenv("KDREC_KAFKA__SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("KDREC_KAFKA__SASL_MECHANISM", "PLAIN")
    options = load_settings().kafka.client_options()
    assert options["security_protocol"] == "SASL_SSL" and options["sasl_mechanism"] == "PLAIN"


def test_teacher_and_student_training_keep_their_own_defaults(monkeypatch):
    monkeypatch.setenv("KDREC_STUDENT_TRAIN__BATCH_SIZE", "64")
    monkeypatch.setenv("KDREC_TRAIN__EPOCHS", "3")
    config = load_settings()
    assert (config.student_train.batch_size, config.student_train.lr) == (64, 2e-3)
    assert (config.train.epochs, config.train.lr, config.train.batch_size) == (3, 5e-4, 32)


def test_a_plain_train_config_keeps_what_it_sets():
    config = Settings(train=TrainConfig(batch_size=8), student_train=TrainConfig(lr=1e-2))
    assert (config.train.batch_size, config.train.lr) == (8, 5e-4)
    assert (config.student_train.batch_size, config.student_train.lr) == (32, 1e-2)
