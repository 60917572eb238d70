"""Settings: every field is loaded from its environment variable, the worklist's nested too."""
from __future__ import annotations

import json
from dataclasses import fields

import pytest

from fhir_assist.config import ReviewSettings, Settings, SettingsError, env_values

# One value per type that differs from every default, as an environment string and parsed.
SAMPLES = {"str": ("x-value", "x-value"), "str | None": ("redis://r:1/0", "redis://r:1/0"),
           "int": ("7", 7), "float": ("2.5", 2.5), "bool": ("true", True),
           "tuple[str, ...]": ("PS256, ES256", ("PS256", "ES256"))}
ENV_NAMES = {"models_dir": "FHIR_ASSIST_MODELS", "state_ttl_s": "FHIR_ASSIST_STATE_TTL",
             "jwt_leeway_s": "FHIR_ASSIST_JWT_LEEWAY", "jwt_max_age_s": "FHIR_ASSIST_JWT_MAX_AGE",
             "session_key": "FHIR_ASSIST_SECRET_KEY"}


def simple_fields(cls):
    return [f for f in fields(cls) if f.type in SAMPLES and "parse" not in f.metadata]


@pytest.mark.parametrize("field", simple_fields(Settings), ids=lambda f: f.name)
def test_each_setting_is_read_from_its_variable(field):
    raw, parsed = SAMPLES[field.type]
    if field.type == "bool":
        raw, parsed = ("false", False) if field.default else ("true", True)
    if field.name == "models_dir":
        return   # must name an existing directory: covered below
    name = ENV_NAMES.get(field.name, "FHIR_ASSIST_" + field.name.upper())
    values = env_values(Settings, {name: raw})
    assert values[field.name] == parsed
    assert getattr(Settings(), field.name) != parsed


def test_variables_with_their_own_parsers(tmp_path):
    env = {"FHIR_ASSIST_MODELS": str(tmp_path), "FHIR_ASSIST_PUBLIC_URL": "https://cds.example.org/",
           "FHIR_ASSIST_ALLOWED_FHIR_SERVERS": "https://a.org/fhir/, https://b.org",
           "FHIR_ASSIST_CORS_ORIGINS": "https://ehr.org/"}
    settings = Settings.from_env(env)
    assert settings.models_dir == str(tmp_path) and settings.public_url == "https://cds.example.org"
    assert settings.allowed_fhir_servers == ("https://a.org/fhir", "https://b.org")
    assert settings.cors_origins == ("https://ehr.org",)
    assert Settings.from_env({"FHIR_ASSIST_REDIS_URL": " "}).redis_url is None


@pytest.mark.parametrize("field", simple_fields(ReviewSettings), ids=lambda f: f.name)
def test_worklist_settings_are_nested_and_read_from_review_variables(field):
    raw, parsed = SAMPLES[field.type]
    if field.type == "bool":
        raw, parsed = ("false", False) if field.default else ("true", True)
    settings = Settings.from_env({"FHIR_ASSIST_REVIEW_" + field.name.upper(): raw})
    assert getattr(settings.review, field.name) == parsed
    assert ReviewSettings.from_env({"FHIR_ASSIST_REVIEW_" + field.name.upper(): raw}) == settings.review


def test_worklist_sign_in_mode_and_secret():
    review = ReviewSettings.from_env({"FHIR_ASSIST_REVIEW_USER": "ann"})
    assert review.auth_mode == "single-user" and ReviewSettings().auth_mode == "none"
    bearer = ReviewSettings(oidc_issuer="https://idp.example.org", oidc_jwks="/keys.json", user="ann")
    assert bearer.auth_mode == "bearer"
    settings = Settings.from_env({"FHIR_ASSIST_SECRET_KEY": "s3cr3t-value", "FHIR_ASSIST_REVIEW_USER": "ann"})
    assert settings.session_key == "s3cr3t-value"
    described = json.dumps(settings.describe())
    assert "s3cr3t-value" not in described and '"user": "ann"' in described


def test_bad_values_name_their_variable():
    with pytest.raises(SettingsError, match="FHIR_ASSIST_REVIEW_SECURE_COOKIES"):
        Settings.from_env({"FHIR_ASSIST_REVIEW_SECURE_COOKIES": "perhaps"})
    with pytest.raises(SettingsError, match="FHIR_ASSIST_STATE_TTL"):
        Settings.from_env({"FHIR_ASSIST_STATE_TTL": "a month"})
