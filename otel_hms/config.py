"""One pipeline for configuration: defaults, then YAML (with ``${ENV}``), then ``OTEL_HMS_*``
environment variables, then command-line flags, then ``validate``.  Errors name the field,
the value and the fix.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from typing import Any

import duckdb

from otel_hms.common.env import expand_env
from otel_hms.common.yaml_file import YamlFileError, read_yaml
from otel_hms.query.spec import QueryParamError, parse_duration
from otel_hms.settings import BY_NAME, SETTINGS, Settings


class ConfigError(Exception):
    """A setting is wrong; the message names it and says how to fix it."""


def _coerce(name: str, value: Any, source: str) -> Any:
    setting = BY_NAME[name]
    if value is None:
        return () if setting.multiple else None
    if setting.multiple:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list | tuple) or not all(isinstance(v, str) for v in items):
            raise ConfigError(f"{source}: must be a list of strings (got {value!r})")
        return tuple(v.strip() for v in items if v.strip())
    try:
        if setting.type is int and not isinstance(value, bool):
            return int(value)
        if setting.type is float and not isinstance(value, bool):
            return float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{source}: must be a {setting.type.__name__} (got {value!r})") from None
    if setting.type in (int, float):
        raise ConfigError(f"{source}: must be a {setting.type.__name__} (got {value!r})")
    return str(value)


def load_yaml(path: str) -> dict[str, Any]:
    try:
        doc = read_yaml(path, "config file")
    except YamlFileError as exc:
        raise ConfigError(f"--config: {path}: {exc}") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ConfigError(f"--config: {path} must be a mapping of settings")
    out: dict[str, Any] = {}
    for key, value in doc.items():
        name = str(key).replace("-", "_")
        if name not in BY_NAME:
            known = ", ".join(s.name for s in SETTINGS)
            raise ConfigError(f"{path}: unknown setting {key!r}; known settings: {known}")
        where, unset = f"{path}: {key}", list[str]()
        value = expand_env(value, where, unset)
        if unset:
            raise ConfigError(unset[0])
        out[name] = _coerce(name, value, where)
    return out


def resolve(flags: Mapping[str, Any], config_path: str | None = None,
            environ: Mapping[str, str] | None = None) -> Settings:
    """The effective settings; ``flags`` holds only what was given on the command line."""
    environ = os.environ if environ is None else environ
    values = {s.name: s.default for s in SETTINGS}
    if config_path:
        values.update(load_yaml(config_path))
    for s in SETTINGS:
        if s.env in environ:
            values[s.name] = _coerce(s.name, environ[s.env], s.env)
    for name, value in flags.items():
        if value is not None:
            values[name] = _coerce(name, value, BY_NAME[name].flag)
    validate(values)
    return Settings(**values)


def parse_address(value: str, field: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"{field}: expected HOST:PORT with a port 0-65535 (got {value!r})")
    return (host.strip("[]") or "0.0.0.0"), int(port)


def duration_setting(name: str, value: object) -> dt.timedelta | None:
    """The value of duration setting ``name`` as a timedelta; ``forever`` (or 0) is None."""
    text = str(value).strip().lower()
    if text in ("forever", "0", "none", ""):
        return None
    try:
        duration: dt.timedelta = parse_duration(text, name)
    except QueryParamError:
        raise ConfigError(f"{BY_NAME[name].flag}: {text!r} is not a duration; use e.g. 30d, "
                          "12h, 90m or forever") from None
    return duration


def memory_limit(value: str) -> None:
    """Refuse a ``memory_limit`` DuckDB would not take, with DuckDB's reason."""
    try:
        duckdb.connect(config={"memory_limit": value}).close()
    except duckdb.Error as exc:
        reason = str(exc).splitlines()[0].removeprefix("Parser Error: ")
        raise ConfigError(f"--memory-limit: {reason} (got {value!r}); use e.g. 2GB, 512MiB "
                          "or 50%") from None


def validate(values: dict[str, Any]) -> None:
    for name in ("retention_raw", "retention_1m", "retention_1h", "rollup_delay"):
        duration_setting(name, values[name])
    for name in ("otlp_grpc", "otlp_http", "api"):
        parse_address(values[name], BY_NAME[name].flag)
    for name in ("max_request_bytes", "max_pending_points", "max_attributes_per_point",
                 "sql_row_limit", "sql_timeout_seconds", "sql_max_answer_bytes",
                 "query_max_series", "query_max_points",
                 "rollup_interval_seconds"):
        if values[name] <= 0:
            raise ConfigError(f"{BY_NAME[name].flag}: must be > 0 (got {values[name]})")
    for name in ("max_series", "max_series_per_metric"):
        if values[name] < 0:
            raise ConfigError(f"{BY_NAME[name].flag}: must be >= 0, 0 for no limit "
                              f"(got {values[name]})")
    if values["series_cache_size"] < 1000:
        raise ConfigError(f"--series-cache-size: must be >= 1000 "
                          f"(got {values['series_cache_size']})")
    if not 0 <= values["decode_workers"] <= 64:
        raise ConfigError(f"--decode-workers: must be 0-64, 0 to decode in the server process "
                          f"(got {values['decode_workers']})")
    if bool(values["tls_cert"]) != bool(values["tls_key"]):
        raise ConfigError("--tls-cert and --tls-key: give both or neither")
    for name in ("tls_cert", "tls_key"):
        if values[name] and not os.path.isfile(values[name]):
            raise ConfigError(f"{BY_NAME[name].flag}: no such file {values[name]!r}")
    if values["auth_token"] is not None and not values["auth_token"].strip():
        raise ConfigError("--auth-token: must not be empty; leave it unset to disable auth")
    if values["export_root"] and not os.path.isdir(values["export_root"]):
        raise ConfigError(f"--export-root: {values['export_root']!r} is not a directory; "
                          "create it or leave export_root unset")
    if values["memory_limit"] is not None:
        memory_limit(values["memory_limit"])
    if values["log_level"].lower() not in ("debug", "info", "warning", "error"):
        raise ConfigError(f"--log-level: expected debug, info, warning or error "
                          f"(got {values['log_level']!r})")
