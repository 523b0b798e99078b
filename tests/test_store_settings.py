"""Where the store lives and what it is configured with: ``load_settings`` (pipeline.config)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import load_settings
from pipeline.errors import InputError


def test_home_comes_from_mhladr_home_and_the_database_defaults_under_it(tmp_path: Path) -> None:
    settings = load_settings(env={"MHLADR_HOME": str(tmp_path / "home")})
    assert settings.home == tmp_path / "home"
    assert settings.effective_database_url == f"sqlite:///{tmp_path / 'home' / 'mhladr.sqlite'}"


def test_settings_file_cannot_move_home(tmp_path: Path) -> None:
    (tmp_path / "settings.toml").write_text(f'home = "{tmp_path / "elsewhere"}"\n', encoding="utf-8")
    with pytest.raises(InputError, match="home is not set in the settings file.*MHLADR_HOME"):
        load_settings(env={"MHLADR_HOME": str(tmp_path)})
    with pytest.raises(ValueError, match="MHLADR_HOME"):
        load_settings(env={"MHLADR_HOME": str(tmp_path / "other")}, home=tmp_path)


def test_environment_overrides_the_settings_file_with_typed_values(tmp_path: Path) -> None:
    (tmp_path / "settings.toml").write_text('abc_threshold = 6000.0\nwindow_last_day = 9\n', encoding="utf-8")
    settings = load_settings(env={"MHLADR_HOME": str(tmp_path), "MHLADR_WINDOW_LAST_DAY": "12",
                                  "MHLADR_CHANNEL_MAPS": '{ Canto = { pe = "FL2-H" } }'})
    assert settings.abc_threshold == pytest.approx(6000.0)
    assert settings.window_last_day == 12
    assert settings.channel_maps == {"Canto": {"pe": "FL2-H"}}
