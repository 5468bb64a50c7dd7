"""Settings: TOML, environment overrides, and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli.main import main
from config.settings import DEFAULT_TOML, SettingsError, load_settings


def test_default_file_is_valid_and_complete() -> None:
    s = load_settings(DEFAULT_TOML)
    assert s.lists[0].name == "linux-mm" and s.lists[0].trees == ["mm"]
    assert s.tree("mm").branches == ["mm-new", "mm-unstable"]
    assert s.paths.cache == Path("~/.cache/lorebot").expanduser()
    assert s.database_url.startswith("sqlite:///") and s.database_url.endswith("lorebot.db")
    assert s.build.arches == ["x86_64", "i386", "arm64", "powerpc"]


def test_environment_overrides_file_and_code_overrides_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tmp_path / "l.toml"
    cfg.write_text('[paths]\nstate = "/from/file"\ncache = "/from/file/cache"\n[web]\nport = 1\n')
    monkeypatch.setenv("LOREBOT_PATHS__STATE", "/from/env")
    monkeypatch.setenv("LOREBOT_WEB__PORT", "8099")
    s = load_settings(cfg)
    assert s.paths.state == Path("/from/env") and s.paths.cache == Path("/from/file/cache")
    assert s.web.port == 8099
    s = load_settings(cfg, paths={"state": "/from/code", "cache": "/c"})
    assert s.paths.state == Path("/from/code")


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("[paths]\nstaet = '/x'\n", "unknown setting 'paths.staet'"),
        ("[build]\njobs = 'many'\n", "bad value for 'build.jobs'"),
        ("[mail]\nmode = 'pigeon'\n", "bad value for 'mail.mode'"),
        ("[[lists]]\nname = 'l'\nurl = 'u'\ntrees = ['nope']\n", "unknown tree 'nope'"),
        ("[paths\n", "not valid TOML"),
        ("[web]\nlisten = '127.0.0.1:18182'\n", "bad value for 'web.listen'"),
    ],
)
def test_bad_settings_stop_the_program_naming_the_key(
    tmp_path: Path, text: str, named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text)
    with pytest.raises(SettingsError) as err:
        load_settings(cfg)
    assert named in str(err.value)
    assert main(["--config", str(cfg), "poll", "--once"]) == 2
    assert named in capsys.readouterr().err


def test_bad_environment_value_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOREBOT_BUILD__MAX_VARIANTS", "0")
    with pytest.raises(SettingsError, match=r"build\.max_variants"):
        load_settings()
