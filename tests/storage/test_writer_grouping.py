"""The writer's group commit waits for batches still being decoded, and for nothing else: a
lone sender's batch commits at once, a batch decoded meanwhile joins its group."""

from __future__ import annotations

from pathlib import Path

import pytest

from otel_hms.receiver.decode import Decoder
from otel_hms.storage import writer as writer_module
from otel_hms.storage.batch import DecodedBatch
from otel_hms.storage.store import known_series_ids, open_store
from otel_hms.storage.writer import Writer

from otlp_requests import gauge_request

T = 1_767_225_600 * 10**9


def _batch(name: str, n: int) -> DecodedBatch:
    return Decoder(256).decode(gauge_request(name, [({"i": str(i)}, T + i, i * 0.5)
                                                    for i in range(n)]))


@pytest.fixture
def writer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Writer:
    # a linger far longer than any step here, so that waiting or not is unmistakable
    monkeypatch.setattr(writer_module, "_LINGER_S", 60.0)
    con = open_store(str(tmp_path / "s.duckdb"))
    return Writer(con, known_series_ids(con))


def test_a_lone_batch_does_not_wait(writer: Writer) -> None:
    try:
        assert writer.submit(_batch("lone", 2)).result(20) == 2
        assert writer.stats.commits == 1
    finally:
        writer.close()


def test_a_batch_being_decoded_joins_the_group(writer: Writer) -> None:
    try:
        with writer.incoming():  # a second request is being decoded
            first = writer.submit(_batch("first", 2))
            with pytest.raises(TimeoutError):
                first.result(0.2)  # its group waits for the second
            second = writer.submit(_batch("second", 3))
        assert (first.result(20), second.result(20)) == (2, 3)
        assert (writer.stats.commits, writer.stats.batches_committed) == (1, 2)
        assert writer.stats.points_committed == 5
    finally:
        writer.close()
