"""The front door stays true: every setting is documented, public names are pinned."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

import otel_hms
import otel_hms.receiver
import otel_hms.storage
from otel_hms.config import resolve
from otel_hms.settings import SETTINGS, Settings

from conftest import ROOT


def test_every_setting_is_documented_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    for s in SETTINGS:
        assert f"| `{s.name}` | `{s.flag}` | `{s.env}` |" in readme, s.name


def test_exported_members() -> None:
    assert otel_hms.__all__ == ["ConfigureError", "DuckDBMetricExporter", "__version__",
                                "configure", "meter_provider", "shutdown", "sql"]
    assert otel_hms.receiver.__all__ == ["DecodedBatch", "Decoder", "SeriesRow"]
    assert otel_hms.storage.__all__ == [
        "CheckpointFailed", "Cursor", "Cursors", "DuckDBStore", "DuckDBStoreOptions",
        "LockHolder", "Retention", "Store", "StoreBusy", "StoreError", "StoreLocked",
        "StoreMaintenance", "StoreWriter", "Writer", "WriterClosed", "known_series_ids",
        "open_store"]
    for module in (otel_hms, otel_hms.receiver, otel_hms.storage):
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"


def test_subpackages_install_under_otel_hms() -> None:
    assert Path(otel_hms.receiver.__file__).parent == ROOT / "receiver"
    assert Path(otel_hms.storage.__file__).parent == ROOT / "storage"


def test_the_typed_settings_follow_the_table() -> None:
    assert [f.name for f in dataclasses.fields(Settings)] == [s.name for s in SETTINGS]
    defaults = resolve({}, None, {})
    for s in SETTINGS:
        assert getattr(defaults, s.name) == s.default, s.name
    with pytest.raises(dataclasses.FrozenInstanceError):
        defaults.db = "other.duckdb"  # type: ignore[misc]
