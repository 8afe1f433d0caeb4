from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from examwatch.datafile import DataFileError
from examwatch.settings import DEMO_SECRET, Mode, Settings, load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("EXAMWATCH_CONFIG", "EXAMWATCH_SECRET", "EXAMWATCH_MODE", "EXAMWATCH_INFLUX__URL"):
        monkeypatch.delenv(var, raising=False)


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "examwatch.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "secret is not set"),
        (f'secret = "{DEMO_SECRET}"', "published demo secret"),
        ('secret = "short"', "at least 16 characters"),
    ],
)
def test_production_refuses_missing_demo_or_weak_secret(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(DataFileError, match=expected):
        load_settings(_file(tmp_path, text))


def test_demo_mode_uses_the_demo_secret(tmp_path: Path) -> None:
    s = load_settings(_file(tmp_path, 'mode = "demo"'))
    assert s.mode is Mode.DEMO
    assert s.secret.get_secret_value() == DEMO_SECRET


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _file(tmp_path, 'secret = "0123456789abcdefXYZ"\n[influx]\nurl = "http://a:1"\n')
    monkeypatch.setenv("EXAMWATCH_INFLUX__URL", "http://b:2")
    assert load_settings(path).influx.url == "http://b:2"
    monkeypatch.setenv("EXAMWATCH_CONFIG", str(path))
    assert load_settings().influx.url == "http://b:2"


def test_bad_values_name_file_and_field(tmp_path: Path) -> None:
    path = _file(tmp_path, 'secret = "0123456789abcdefXYZ"\n[ingest]\nbatch_size = 0\nflush = 1\n')
    with pytest.raises(DataFileError) as err:
        load_settings(path)
    lines = str(err.value).splitlines()
    assert f"{path}: ingest.batch_size: Input should be greater than or equal to 1" in lines
    assert f"{path}: ingest.flush: Extra inputs are not permitted" in lines


def test_bad_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="not valid TOML"):
        load_settings(_file(tmp_path, "secret = \n"))
    with pytest.raises(DataFileError, match="no such file"):
        load_settings(tmp_path / "missing.toml")


def test_tls_listener_needs_certificates(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="tls_port needs certfile and keyfile"):
        load_settings(_file(tmp_path, 'mode = "demo"\n[broker]\ntls_port = 8883\n'))


def test_sample_config_documents_every_option() -> None:
    """Each setting has a commented line in config/examwatch.sample.toml, and the file loads."""
    path = Path(__file__).parents[2] / "config" / "examwatch.sample.toml"
    text = path.read_text()
    for name, info in Settings.model_fields.items():
        section = info.annotation
        fields = getattr(section, "model_fields", None)
        if fields is None:
            assert f"\n{name} = " in text, name
            continue
        assert f"[{name}]" in text, name
        for sub in fields:
            assert f"{sub} = " in text, f"{name}.{sub}"
    data = tomllib.loads(text)
    data["secret"] = "0123456789abcdef-sample"
    load_settings(None, **data)
