"""The alert state machine, driven by a stepped clock and compact series (like promqltest).

A series is written ``"1 1 5 5 _ 5"``: one value per evaluation (``_`` = no row).  Times are
evaluation numbers × the interval, so every expected time is exact.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import duckdb
from hypothesis import given, settings
from hypothesis import strategies as st

from otel_hms.alerting.evaluator import (
    FIRING,
    INACTIVE,
    PENDING,
    RESOLVED_RETENTION,
    Instance,
    QueryFailed,
    Sample,
    Step,
    fingerprint,
    step,
)
from otel_hms.alerting.rules import Rule
from otel_hms.alerting.state import StateStore
from otel_hms.storage.alert_state import AlertState

INTERVAL = 15.0


def parse(values: str) -> list[float | None]:
    return [None if v == "_" else float(v) for v in values.split()]


class Series:
    """Fake query: rows from compact series; ``condition`` is ``value > threshold``."""

    def __init__(self, series: Mapping[str, str], threshold: float = 2.0,
                 errors: Sequence[int] = ()) -> None:
        self.series = {k: parse(v) for k, v in series.items()}
        self.threshold = threshold
        self.errors = set(errors)

    def __call__(self, rule: Rule, now: float) -> list[Sample]:
        i = round(now / INTERVAL)
        if i in self.errors:
            raise QueryFailed("Binder Error: column \"Valu\" not found")
        out = []
        for route, values in self.series.items():
            v = values[i] if i < len(values) else None
            if v is not None:
                out.append(Sample({"route": route}, v, v > self.threshold))
        return out


def rule(**kw: object) -> Rule:
    base: dict[str, object] = dict(
        alert="HighLatency", group="permits", sql="SELECT 1", condition="value > 2",
        interval=INTERVAL, labels={"severity": "critical"},
        annotations={"summary": "latency {{ value }} s on {{ labels.route }}"})
    base.update(kw)
    return Rule(**base)  # type: ignore[arg-type]


def run(r: Rule, query: Series, evaluations: int, previous: Mapping[str, Instance] | None = None,
        start: int = 0, resend_delay: float = 60.0) -> tuple[list[Step], dict[str, Instance]]:
    state = dict(previous or {})
    steps = []
    for i in range(start, start + evaluations):
        s = step(r, i * INTERVAL, query, state, resend_delay)
        steps.append(s)
        state = s.instances
    return steps, state


def moves(steps: Sequence[Step]) -> list[tuple[float, str, str, str]]:
    return [(t.at, t.labels.get("route", ""), t.from_state, t.to_state)
            for s in steps for t in s.transitions]


def notices(steps: Sequence[Step]) -> list[tuple[float, str, str]]:
    return [(n.instance.last_sent_at or 0.0, n.instance.labels.get("route", ""), n.reason)
            for s in steps for n in s.notices]


def test_pending_then_firing_after_for() -> None:
    steps, state = run(rule(for_seconds=30), Series({"/apply": "1 3 3 3 3"}), 5)
    assert moves(steps) == [(15.0, "/apply", INACTIVE, PENDING), (45.0, "/apply", PENDING, FIRING)]
    (inst,) = state.values()
    assert inst.state == FIRING and inst.active_at == 15.0 and inst.fired_at == 45.0
    assert inst.value == 3.0
    assert inst.labels == {"route": "/apply", "severity": "critical", "alertname": "HighLatency"}
    assert inst.annotations == {"summary": "latency 3.0 s on /apply"}
    assert notices(steps) == [(45.0, "/apply", "firing")]


def test_zero_for_fires_at_once() -> None:
    steps, _ = run(rule(), Series({"/apply": "3"}), 1)
    assert moves(steps) == [(0.0, "/apply", INACTIVE, PENDING), (0.0, "/apply", PENDING, FIRING)]
    assert notices(steps) == [(0.0, "/apply", "firing")]


def test_pending_dropped_when_absent_and_timer_restarts() -> None:
    steps, state = run(rule(for_seconds=30), Series({"/apply": "3 3 1 3 3 3"}), 6)
    assert moves(steps) == [(0.0, "/apply", INACTIVE, PENDING),
                            (30.0, "/apply", PENDING, INACTIVE),
                            (45.0, "/apply", INACTIVE, PENDING),
                            (75.0, "/apply", PENDING, FIRING)]
    assert next(iter(state.values())).active_at == 45.0


def test_resolved_is_kept_and_resent_for_retention_then_dropped() -> None:
    n = int(RESOLVED_RETENTION / INTERVAL) + 3
    steps, state = run(rule(), Series({"/apply": "3 3 1" + " 1" * n}), n + 3)
    assert moves(steps) == [(0.0, "/apply", INACTIVE, PENDING), (0.0, "/apply", PENDING, FIRING),
                            (30.0, "/apply", FIRING, INACTIVE)]
    sent = notices(steps)
    assert sent[:2] == [(0.0, "/apply", "firing"), (30.0, "/apply", "resolved")]
    # re-sent every resend delay (60 s) while retained (15 min after resolving)
    assert [t for t, _, reason in sent if reason == "resend"] == [
        30.0 + 60 * k for k in range(1, int(RESOLVED_RETENTION / 60) + 1)]
    assert state == {}


def test_value_changes_do_not_make_new_instances() -> None:
    steps, state = run(rule(), Series({"/apply": "3 4 5"}), 3)
    assert len(state) == 1 and next(iter(state.values())).value == 5.0
    assert [m[3] for m in moves(steps)] == [PENDING, FIRING]
    assert next(iter(state.values())).annotations["summary"] == "latency 5.0 s on /apply"


def test_keep_firing_for_holds_then_resolves() -> None:
    steps, state = run(rule(keep_firing_for=30), Series({"/apply": "3 1 1 1 1"}), 5)
    assert moves(steps) == [(0.0, "/apply", INACTIVE, PENDING), (0.0, "/apply", PENDING, FIRING),
                            (45.0, "/apply", FIRING, INACTIVE)]
    (inst,) = state.values()
    assert inst.resolved_at == 45.0 and inst.keep_firing_since is None


def test_keep_firing_for_resets_when_active_again() -> None:
    steps, state = run(rule(keep_firing_for=30), Series({"/apply": "3 1 3 1 1 1"}), 6)
    assert moves(steps)[-1] == (75.0, "/apply", FIRING, INACTIVE)


def test_flapping_fires_and_resolves_each_time_without_duplicates() -> None:
    steps, _ = run(rule(), Series({"/apply": "3 1 3 1 3 3"}), 6)
    assert [(t, r) for t, _, r in notices(steps)] == [
        (0.0, "firing"), (15.0, "resolved"), (30.0, "firing"), (45.0, "resolved"),
        (60.0, "firing")]


def test_instances_are_independent() -> None:
    steps, state = run(rule(for_seconds=15), Series({"/apply": "3 3 1", "/pay": "1 3 3"}), 3)
    assert moves(steps) == [(0.0, "/apply", INACTIVE, PENDING),
                            (15.0, "/pay", INACTIVE, PENDING),
                            (15.0, "/apply", PENDING, FIRING),
                            (30.0, "/apply", FIRING, INACTIVE),
                            (30.0, "/pay", PENDING, FIRING)]
    assert {i.labels["route"]: i.state for i in state.values()} == {"/apply": INACTIVE,
                                                                     "/pay": FIRING}


def test_no_data_ok_resolves() -> None:
    steps, _ = run(rule(on_no_data="ok"), Series({"/apply": "3 _"}), 2)
    assert moves(steps)[-1] == (15.0, "/apply", FIRING, INACTIVE)
    assert [s.health for s in steps] == ["ok", "nodata"]


def test_no_data_keep_last_keeps_firing_and_pending_timers() -> None:
    steps, state = run(rule(on_no_data="keep_last"), Series({"/apply": "3 _ _"}), 3)
    assert [m[3] for m in moves(steps)] == [PENDING, FIRING]
    assert next(iter(state.values())).state == FIRING


def test_no_data_alerting_keeps_instances_active() -> None:
    steps, state = run(rule(on_no_data="alerting", for_seconds=15), Series({"/apply": "3 _ _"}), 3)
    assert moves(steps) == [(0.0, "/apply", INACTIVE, PENDING), (15.0, "/apply", PENDING, FIRING)]
    assert next(iter(state.values())).state == FIRING


def test_no_data_alerting_without_instances_fires_rule_labelled_alert() -> None:
    _, state = run(rule(on_no_data="alerting"), Series({}), 1)
    (inst,) = state.values()
    assert inst.labels == {"severity": "critical", "alertname": "HighLatency"}
    assert inst.state == FIRING


def test_no_data_nodata_resolves_and_fires_nodata_instance() -> None:
    steps, state = run(rule(on_no_data="nodata"), Series({"/apply": "3 _"}), 2)
    by = {i.labels.get("route", i.labels.get("alertstate")): i.state for i in state.values()}
    assert by == {"/apply": INACTIVE, "nodata": FIRING}


def test_error_keep_last_changes_nothing_and_reports_error() -> None:
    steps, state = run(rule(), Series({"/apply": "3 3 3"}, errors=[1]), 3)
    assert [s.health for s in steps] == ["ok", "error", "ok"]
    assert steps[1].error == 'Binder Error: column "Valu" not found'
    assert [m[3] for m in moves(steps)] == [PENDING, FIRING]  # no false "resolved"
    assert next(iter(state.values())).state == FIRING


def test_error_error_mode_fires_error_instance_with_message() -> None:
    steps, state = run(rule(on_error="error"), Series({"/apply": "1 1"}, errors=[1]), 2)
    (inst,) = [i for i in state.values() if i.state == FIRING]
    assert inst.labels["alertstate"] == "error"
    assert inst.annotations["error"] == 'Binder Error: column "Valu" not found'


def test_error_alerting_mode_keeps_active() -> None:
    steps, state = run(rule(on_error="alerting", for_seconds=30), Series({"/apply": "3 3 3"},
                                                                         errors=[1, 2]), 3)
    assert moves(steps)[-1] == (30.0, "/apply", PENDING, FIRING)


def test_duplicate_label_sets_are_an_error() -> None:
    def query(r: Rule, now: float) -> list[Sample]:
        return [Sample({"route": "/a"}, 3.0), Sample({"route": "/a"}, 4.0)]
    s = step(rule(condition=None), 0.0, query, {})
    assert s.health == "error" and s.instances == {}
    assert s.error == ("two rows have the same labels (route='/a'); add a string column or "
                       "GROUP BY so each row is one alert")


def test_resend_delay_applies_to_firing() -> None:
    steps, _ = run(rule(), Series({"/apply": "3 " * 10}), 10, resend_delay=60.0)
    assert [(t, r) for t, _, r in notices(steps)] == [(0.0, "firing"), (60.0, "resend"),
                                                      (120.0, "resend")]


def test_fingerprint_is_stable_and_value_free() -> None:
    assert fingerprint({"a": "1", "b": "2"}) == fingerprint({"b": "2", "a": "1"})
    assert len(fingerprint({})) == 16


def _roundtrip(tmp_path: Path, state: dict[str, Instance], steps: Sequence[Step],
               r: Rule) -> dict[str, Instance]:
    """Save through the real state tables, close the store, open it again, load."""
    db = str(tmp_path / "alerts.duckdb")
    con = duckdb.connect(db)
    store = StateStore(AlertState(con))
    store.save(r.group, r.alert, state.values(), [t for s in steps for t in s.transitions])
    con.close()
    con = duckdb.connect(db)
    try:
        loaded = StateStore(AlertState(con)).load()[r.key]
        history = con.execute("SELECT count(*) FROM alert_history").fetchone()
        assert history is not None and history[0] == len([t for s in steps
                                                          for t in s.transitions])
    finally:
        con.close()
    return loaded


def test_restart_in_the_middle_of_for_continues_the_timer(tmp_path: Path) -> None:
    r = rule(for_seconds=45)
    series = Series({"/apply": "3 3 3 3 3 3"})
    before, state = run(r, series, 2)
    loaded = _roundtrip(tmp_path, state, before, r)
    assert loaded == state
    after, _ = run(r, series, 3, previous=loaded, start=2)
    assert moves(after) == [(45.0, "/apply", PENDING, FIRING)]


def test_restart_while_firing_neither_renotifies_nor_resolves(tmp_path: Path) -> None:
    r = rule()
    series = Series({"/apply": "3 3 3 3"})
    before, state = run(r, series, 2)
    loaded = _roundtrip(tmp_path, state, before, r)
    after, final = run(r, series, 2, previous=loaded, start=2)
    assert moves(after) == [] and notices(after) == []
    assert next(iter(final.values())).fired_at == 0.0


def test_alerting_exported_members() -> None:
    import otel_hms.alerting

    assert otel_hms.alerting.__all__ == [
        "Alerting", "BacktestError", "Group", "Instance", "Notice", "QueryFailed", "Rule",
        "RuleFileError", "RuleSet", "RuleTestFailure", "Sample", "Step", "Transition",
        "load_rules", "step"]
    for name in otel_hms.alerting.__all__:
        assert hasattr(otel_hms.alerting, name), name


def test_slots_skip_and_count_missed_ticks() -> None:
    from otel_hms.alerting.service import next_slot

    assert next_slot(0.0, 3.0, 15.0) == (15.0, 0)
    assert next_slot(7.5, 8.0, 15.0) == (15.0, 0)  # first evaluation at start-up, then slots
    assert next_slot(15.0, 29.0, 15.0) == (30.0, 0)
    assert next_slot(15.0, 31.0, 15.0) == (30.0, 0)  # late by 1 s: still run
    assert next_slot(15.0, 46.0, 15.0) == (45.0, 1)  # the 30 s slot passed entirely
    assert next_slot(15.0, 80.0, 15.0) == (75.0, 3)


def test_rows_to_samples() -> None:
    from otel_hms.alerting.query import samples_from, value_column

    cols = ["route", "value", "n", "__otel_hms_active"]
    types = ["VARCHAR", "DOUBLE", "BIGINT", "BOOLEAN"]
    s = samples_from(cols, types, [["/a", "Infinity", 3, True], [None, 2, 1, False],
                                   ["", "NaN", 0, False]])
    assert [(x.labels, x.value, x.active) for x in s[:2]] == [
        ({"route": "/a"}, float("inf"), True), ({}, 2.0, False)]
    assert s[2].labels == {} and s[2].value != s[2].value  # NaN
    assert value_column(["route", "latency"], ["VARCHAR", "DECIMAL(18,3)"]) == 1
    assert value_column(["route"], ["VARCHAR"]) is None
    for columns, kinds, message in (
            (["a", "b"], ["DOUBLE", "BIGINT"],
             "several numeric columns (a, b): name the value column `value`"),
            (["value"], ["VARCHAR"], "column value is VARCHAR; the value column must be numeric "
                                     "(CAST it, or name another column value)")):
        try:
            value_column(columns, kinds)
        except QueryFailed as exc:
            assert str(exc) == message
        else:
            raise AssertionError("expected QueryFailed")


def test_clock_is_pinned_outside_strings() -> None:
    from otel_hms.alerting.query import hide_future, pin_clock

    t = "TIMESTAMPTZ '1970-01-01T00:01:00+00:00'"
    assert pin_clock("SELECT now(), 'now()', current_timestamp, x.now FROM t", 60.0) == (
        f"SELECT {t}, 'now()', {t}, x.now FROM t")
    assert hide_future("SELECT Value FROM otel_points p WHERE true", 60.0) == (
        f"SELECT Value FROM (SELECT * FROM main.otel_points WHERE TimeUnix <= {t}) p WHERE true")


@settings(max_examples=60, deadline=None)
@given(labels=st.dictionaries(st.text(min_size=1), st.text(), max_size=5),
       value=st.one_of(st.none(), st.floats(allow_nan=False)))
def test_state_round_trips_odd_labels_and_values(labels: dict[str, str],
                                                 value: float | None) -> None:
    con = duckdb.connect()
    try:
        store = StateStore(AlertState(con))
        inst = Instance(fingerprint(labels), labels, {"summary": "ü\u0000x"}, FIRING, value,
                        active_at=1.5, fired_at=2.25, last_sent_at=2.25)
        store.save("g", "A", [inst], [])
        assert store.load() == {"g/A": {inst.fingerprint: inst}}
    finally:
        con.close()
