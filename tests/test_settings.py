"""Settings are checked once, typed, when loaded: each unusable value is an InputError naming the
setting, where it was written, and a good example (pipeline/config.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import FIELDS, load_settings, mask_url
from pipeline.errors import BAD_SETTING, InputError


def from_file(tmp_path: Path, text: str, **env: str):
    (tmp_path / "settings.toml").write_text(text, encoding="utf-8")
    return load_settings(env={"MHLADR_HOME": str(tmp_path), **env})


def refused(tmp_path: Path, text: str, **env: str) -> InputError:
    with pytest.raises(InputError) as caught:
        from_file(tmp_path, text, **env)
    assert caught.value.code == BAD_SETTING
    return caught.value


def test_values_come_typed_from_file_and_environment(tmp_path: Path) -> None:
    settings = from_file(tmp_path, 'abc_threshold = 7500\nstatistic = "geometric_mean"\nwindow_last_day = 9\n',
                         MHLADR_R2_MIN="0.98", MHLADR_MONOCYTES_REVIEW_BELOW="2500")
    assert isinstance(settings.abc_threshold, float) and settings.abc_threshold == pytest.approx(7500.0)
    assert (settings.statistic, settings.window_last_day, settings.monocytes_review_below) == ("geometric_mean", 9, 2500)
    assert settings.r2_min == pytest.approx(0.98)


@pytest.mark.parametrize(("text", "message"), [
    ("abc_treshold = 7000\n", "unknown setting 'abc_treshold' (did you mean abc_threshold?"),
    ("totally_new = 1\n", "unknown setting 'totally_new' (every setting is listed in README.md"),
    ("abc_threshold = \n", "not valid TOML (Invalid value (at line 1, column 17))"),
    ('abc_threshold = "nine"\n', 'abc_threshold = "nine": must be a number (e.g. abc_threshold = 8000)'),
    ("abc_threshold = true\n", "abc_threshold = True: must be a number"),
    ("abc_threshold = -5\n", "abc_threshold = -5: must be above 0"),
    ("window_last_day = 9.5\n", "window_last_day = 9.5: must be a whole number (e.g. window_last_day = 10)"),
    ("window_first_day = 12\n", "window_first_day = 12: the window's first day (12) is after its last (10)"),
    ("monocytes_fail_below = 3000\n", "monocytes_fail_below (3000) is above monocytes_review_below (2000)"),
    ('statistic = "mean"\n', 'statistic = "mean": must be one of median, geometric_mean'),
    ("r2_min = 1.5\n", "r2_min = 1.5: must be above 0 and at most 1"),
    ("slope_min = 1.3\n", "slope_min (1.3) must be above 0 and below slope_max (1.2)"),
    ('patient_id_pattern = "PT-("\n', 'patient_id_pattern = "PT-(": not a regular expression'),
    ('webhook_url = "ecrf.example.org"\n', "must be an http:// or https:// URL"),
    ('gating_template = "/no/such/template.xml"\n', "no such GatingML file"),
    ('channel_maps = { Canto = { pee = "FL2-H" } }\n', "unknown channel role(s) pee"),
    ('channel_maps = { Canto = "FL2-H" }\n', 'must map each $CYT instrument name to { role = "channel" }'),
    ('database_url = "mysql://u:pw@db/x"\n', 'database_url = "mysql://u:***@db/x": the results database is SQLite'),
    ('home = "/elsewhere"\n', "home is not set in the settings file"),
])
def test_an_unusable_settings_file_names_the_setting_and_the_file(tmp_path: Path, text: str, message: str) -> None:
    error = refused(tmp_path, text)
    assert error.file == str(tmp_path / "settings.toml")
    assert message in error.message, error.message
    assert "pw" not in error.message


@pytest.mark.parametrize(("variable", "value", "message"), [
    ("MHLADR_ABC_THRESHOLD", "abc", "value 'abc': not a number (e.g. MHLADR_ABC_THRESHOLD=8000)"),
    ("MHLADR_ABC_THRESHOLD", "nan", "value 'nan': must be a number"),
    ("MHLADR_WINDOW_LAST_DAY", "ten", "value 'ten': not a whole number (e.g. MHLADR_WINDOW_LAST_DAY=10)"),
    ("MHLADR_CHANNEL_MAPS", "{x", "value '{x': not a TOML inline table"),
    ("MHLADR_DATABASE_URL", "postgresql://u:pw@h/db", "value 'postgresql://u:***@h/db': the results database is"),
])
def test_an_unusable_variable_is_named(tmp_path: Path, variable: str, value: str, message: str) -> None:
    error = refused(tmp_path, "", **{variable: value})
    assert error.file == variable and message in error.message, error.message


def test_the_environment_is_checked_after_the_file_it_overrides(tmp_path: Path) -> None:
    assert from_file(tmp_path, "abc_threshold = 6000\n", MHLADR_ABC_THRESHOLD="5000").abc_threshold == pytest.approx(5000.0)
    error = refused(tmp_path, "window_first_day = 8\n", MHLADR_WINDOW_LAST_DAY="6")
    assert error.file == str(tmp_path / "settings.toml") and "first day (8) is after its last (6)" in error.message


def test_settings_file_variable_and_home_must_exist_as_named(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no settings file"):
        load_settings(env={"MHLADR_HOME": str(tmp_path), "MHLADR_SETTINGS": str(tmp_path / "absent.toml")})
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="MHLADR_HOME must name a folder"):
        load_settings(env={"MHLADR_HOME": str(tmp_path / "file")})


def test_overrides_are_checked_too(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="must be a number"):
        load_settings(env={"MHLADR_HOME": str(tmp_path)}, abc_threshold="nine")
    with pytest.raises(TypeError, match="unknown setting 'abc_treshold'"):
        load_settings(env={"MHLADR_HOME": str(tmp_path)}, abc_treshold=1)


def test_every_setting_is_documented_in_the_readme() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    settings = readme[readme.index("## Settings"):readme.index("## When something goes wrong")]
    for name in FIELDS:
        assert f"`{name}`" in settings, name
        assert f"MHLADR_{name.upper()}" in settings or name.startswith("kw_"), name   # the kw_ row: MHLADR_KW_...


def test_passwords_are_masked_in_urls() -> None:
    assert mask_url("postgresql+psycopg://u:s3cret@h:5432/db") == "postgresql+psycopg://u:***@h:5432/db"
    assert mask_url("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"


def test_every_setting_has_a_type_check() -> None:
    """A setting of a new type must get its check in _typed (a default passes it)."""
    from pipeline.config import Origin, Settings, _typed
    defaults = Settings()
    for name in FIELDS:
        assert _typed(name, getattr(defaults, name), Origin("default", name, name)) == getattr(defaults, name)


def test_the_reports_folder_is_named_once_under_the_home(tmp_path: Path) -> None:
    settings = load_settings(env={"MHLADR_HOME": str(tmp_path / "lab")})
    assert settings.reports_dir == tmp_path / "lab" / "reports"
