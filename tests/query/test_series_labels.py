"""Ungrouped series labels: the fewest extra labels that tell look-alike series apart."""

from __future__ import annotations

from otel_hms.query.series_labels import SeriesInfo, distinct_labels, series_info


def test_scope_then_series_id_as_last_resorts() -> None:
    infos = series_info([
        (1, "svc", ["k"], ["v"], ["host.name"], ["h"], "lib", "1.0"),
        (2, "svc", ["k"], ["v"], ["host.name"], ["h"], "lib", "2.0"),
        (3, "svc", ["k"], ["v"], ["host.name"], ["h"], "lib", "2.0"),
        (4, None, ["k"], ["w"], [], [], None, None),
    ])
    assert infos[4] == SeriesInfo({"service.name": "", "k": "w"}, {}, {})
    assert distinct_labels(infos) == {
        1: {"service.name": "svc", "k": "v", "otel.scope.version": "1.0"},
        2: {"service.name": "svc", "k": "v", "otel.scope.version": "2.0",
            "otel.series_id": "2"},
        3: {"service.name": "svc", "k": "v", "otel.scope.version": "2.0",
            "otel.series_id": "3"},
        4: {"service.name": "", "k": "w"},
    }


def test_point_attributes_win_over_resource_attributes() -> None:
    infos = series_info([
        (1, "svc", ["host.name"], ["a"], ["host.name", "service.instance.id"], ["x", "i"],
         None, None),
        (2, "svc", ["host.name"], ["a"], ["host.name"], ["y"], None, None),
    ])
    assert distinct_labels(infos) == {
        1: {"service.name": "svc", "host.name": "a", "service.instance.id": "i"},
        2: {"service.name": "svc", "host.name": "a"},
    }
