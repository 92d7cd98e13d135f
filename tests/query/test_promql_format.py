"""Numbers, times and durations as Prometheus 2.42 writes and reads them (design §4.1, §4.3)."""

from __future__ import annotations

import pytest

from otel_hms.query.promql import format as fmt
from otel_hms.query.promql.params import (
    MAX_TIME_MS,
    MIN_TIME_MS,
    ParamError,
    parse_duration,
    parse_time,
)


@pytest.mark.parametrize(("value", "expected"), [
    (1e-10, "1e-10"), (1e21, "1e+21"), (-1e-7, "-1e-07"), (1e-6, "0.000001"),
    (2.0**63, "9223372036854776000"), (-0.0, "-0"), (0.1 * 3, "0.30000000000000004"),
    (0.0, "0"), (1.5e-7, "1.5e-07"), (1.234e22, "1.234e+22"), (123456.5, "123456.5"),
    (float("nan"), "NaN"), (float("inf"), "+Inf"), (float("-inf"), "-Inf"), (2.0, "2"),
])
def test_sample_values(value: float, expected: str) -> None:
    assert fmt.sample_value(value) == expected


@pytest.mark.parametrize(("value", "expected"), [
    (1e-10, "0.0000000001"), (1e21, "1000000000000000000000"), (-0.0, "-0"), (2.0, "2"),
    (1e-7, "0.0000001"), (float("nan"), "NaN"), (float("-inf"), "-Inf"),
])
def test_scalar_values_never_use_an_exponent(value: float, expected: str) -> None:
    assert fmt.fixed(value) == expected


@pytest.mark.parametrize(("ms", "expected"), [
    (1500, "1.500"), (-1500, "-1.500"), (0, "0"), (1796417446927, "1796417446.927"),
    (4000, "4"), (1005, "1.005"), (-5, "-0.005"),
])
def test_sample_times(ms: int, expected: str) -> None:
    assert fmt.sample_time(ms) == expected


@pytest.mark.parametrize(("value", "expected"), [
    (4.0, "4"), (1000.123, "1000.123"), (1609746000.5, "1609746000.5"), (1e-7, "1e-7"),
    (-1.5, "-1.5"), (1e21, "1e+21"), (0.0, "0"),
])
def test_scalar_result_times_are_go_json_floats(value: float, expected: str) -> None:
    assert fmt.json_float(value) == expected


def test_strings_are_escaped_as_go_escapes_them() -> None:
    assert fmt.json_string('a"b\\c<d>&e\n\t\x01\x08\u2028é') == (
        '"a\\"b\\\\c\\u003cd\\u003e\\u0026e\\n\\t\\u0001\\u0008\\u2028é"')
    assert fmt.json_labels((("a", "1"), ("b", "<"))) == '{"a":"1","b":"\\u003c"}'


@pytest.mark.parametrize(("text", "ms"), [
    ("1000.1239", 1000124), ("4", 4000), ("-1.5", -1500), ("1e3", 1_000_000),
    ("0x1p3", 8000), ("2021-01-04T07:40:00.5Z", 1609746000500),
    ("2021-01-04T07:40:00+01:00", 1609742400000),
    ("2021-01-04T07:40:00.123456789Z", 1609746000123),
    ("-292273086-05-16T16:47:06Z", MIN_TIME_MS),
    ("292277025-08-18T07:12:54.999999999Z", MAX_TIME_MS),
    ("1796418425123", 1796418425123000),  # Grafana's exemplar probe: milliseconds as seconds
    ("1_000", 1_000_000),  # Go's ParseFloat takes underscores between digits
])
def test_times(text: str, ms: int) -> None:
    assert parse_time(text) == ms


@pytest.mark.parametrize("text", ["", "xyz", "2021-01-04", "1__000", " 5", "0x10"])
def test_bad_times(text: str) -> None:
    with pytest.raises(ParamError) as caught:
        parse_time(text)
    assert str(caught.value) == f'cannot parse "{text}" to a valid timestamp'


@pytest.mark.parametrize(("text", "ns"), [
    ("15", 15_000_000_000), ("0.5", 500_000_000), ("30s", 30_000_000_000),
    ("1h30m", 5_400_000_000_000), ("0", 0), ("1d", 86_400_000_000_000), ("100ms", 100_000_000),
])
def test_durations(text: str, ns: int) -> None:
    assert parse_duration(text) == ns


@pytest.mark.parametrize("text", ["", "1x", "5m5m", "1h1d", "0.000001s", "1.5h", "-5m"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ParamError) as caught:
        parse_duration(text)
    assert str(caught.value) == f'cannot parse "{text}" to a valid duration'
