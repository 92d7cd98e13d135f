"""collector-config.yaml is a complete Collector pipeline that forwards to otel-hms.

No Collector binary is installable here (not on PyPI, npm or Debian), so this checks the
file's structure the way the Collector resolves it: every pipeline component is defined and
the exporter carries the settings the README promises.
"""

from __future__ import annotations

import yaml

from conftest import ROOT

CONFIG = ROOT / "collector-config.yaml"


def test_pipeline_components_are_defined() -> None:
    config = yaml.safe_load(CONFIG.read_text())
    pipeline = config["service"]["pipelines"]["metrics"]
    for section in ("receivers", "processors", "exporters"):
        for name in pipeline[section]:
            assert name in config[section], f"{section}: {name} is used but not defined"
    assert set(pipeline["receivers"]) == {"otlp", "hostmetrics"}


def test_exporter_to_otel_hms() -> None:
    exporter = yaml.safe_load(CONFIG.read_text())["exporters"]["otlp_grpc/otel-hms"]
    assert exporter["tls"] == {"insecure": True}
    assert exporter["compression"] == "gzip"
    assert exporter["retry_on_failure"]["enabled"] is True
    assert exporter["sending_queue"]["enabled"] is True
    assert exporter["endpoint"].endswith(":-127.0.0.1:14317}")
