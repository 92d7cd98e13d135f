"""Fuzz targets for what the OTLP endpoints do with a request body, run by atheris (libFuzzer).

Each target takes bytes a sender could put on the wire and runs them through the code the
endpoint runs, up to the tables the writer inserts:

- ``protobuf``: OTLP/gRPC and OTLP/HTTP protobuf bodies, as the decode worker takes them
  (``Decoder.decode_bytes``: the byte walk, or upb for what the walk leaves to it), then the
  point tables (``prepare``), their trip over the worker's pipe and the series rows.
- ``json``: OTLP/HTTP JSON bodies (``parse_json``, then the same decoding).
- ``encoded``: ``Content-Encoding`` (gzip, deflate, zstd) and gRPC messages that may be
  compressed (``grpc_message``), each under a small size limit.

A body may be refused only as the endpoints refuse bad data (``InvalidRequest``, ``TooLarge``,
``Unsupported``: 400, 413, 415); anything else raised is a bug, and so is a body that the byte
walk and upb decode differently (``test_decode_bulk.decode_both`` compares them) or a
decompression that returns more than its limit.

    cd tests/receiver
    python fuzz_otlp.py protobuf -max_total_time=600 /tmp/new fuzz_corpus/protobuf

fuzzes one target for as long as asked, writing new inputs into the first directory (merge
the interesting ones into the kept corpus with ``-merge=1 fuzz_corpus/protobuf /tmp/new``).
``test_fuzz.py`` runs every target for a bounded time on ``fuzz_corpus/<target>/``;
``python fuzz_otlp.py --seed`` writes the corpus' hand-made seeds again.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Callable
from pathlib import Path

import atheris

# The tests' helpers: this directory is the script's; its parent holds the shared ones.
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

with atheris.instrument_imports(include=["otel_hms"]):
    from otel_hms.receiver.decode import Decoder
    from otel_hms.receiver.errors import InvalidRequest, TooLarge, Unsupported
    from otel_hms.receiver.payload import decompress, grpc_message, parse_json, parse_protobuf
    from otel_hms.storage.arrow_batches import from_ipc, prepare, series_table, to_ipc
    from otel_hms.storage.batch import DecodedBatch

from test_decode_bulk import decode_both  # noqa: E402

CORPUS = Path(__file__).parent / "fuzz_corpus"
LIMIT = 1 << 16  # the decompression limit of ``encoded`` (the server's is max_request_bytes)
MAX_ATTRIBUTES = 8  # low, so that points over the limit are met too
REFUSALS = (InvalidRequest, TooLarge, Unsupported)
TARGET_VARIABLE = "OTEL_HMS_FUZZ_TARGET"


def _store_side(batch: DecodedBatch) -> None:
    """What happens to a decoded batch before the writer: its point tables are built and
    cross the worker's pipe unchanged, its new series become a table."""
    prepare(batch)
    for kind, table in (batch.prepared or {}).items():
        sent = to_ipc(table)  # compared as bytes: NaN equals NaN there
        assert to_ipc(from_ipc(kind, sent)).equals(sent), kind
    if batch.series:
        table = series_table(list(batch.series.values()))
        assert table.num_rows == len(batch.series)
    assert batch.accepted >= 0 and batch.rejected >= 0


def fuzz_protobuf(data: bytes) -> None:
    try:
        parse_protobuf(data)
    except InvalidRequest:
        try:
            Decoder(MAX_ATTRIBUTES).decode_bytes(data)
        except InvalidRequest:
            return
        raise AssertionError("the byte walk decoded a body that upb refuses") from None
    by_bytes, by_message = decode_both(data)
    assert by_bytes == by_message, "the byte walk and upb decode this body differently"
    _store_side(Decoder(MAX_ATTRIBUTES).decode_bytes(data))


def fuzz_json(data: bytes) -> None:
    try:
        request = parse_json(data)
    except InvalidRequest:
        return
    _store_side(Decoder(MAX_ATTRIBUTES).decode(request))
    # The same request as protobuf decodes alike both ways.
    by_bytes, by_message = decode_both(request.SerializeToString())
    assert by_bytes == by_message, "the byte walk and upb decode this request differently"


ENCODINGS = ("gzip", "deflate", "zstd", "identity", "br")


def fuzz_encoded(data: bytes) -> None:
    if not data:
        return
    choice, body = data[0], data[1:]
    try:
        if choice % (len(ENCODINGS) + 1) == len(ENCODINGS):
            out = grpc_message(body, LIMIT)
        else:
            out = decompress(body, ENCODINGS[choice % (len(ENCODINGS) + 1)], LIMIT)
    except REFUSALS:
        return
    assert len(out) <= max(LIMIT, len(body)), len(out)


TARGETS: dict[str, Callable[[bytes], None]] = {
    "protobuf": fuzz_protobuf, "json": fuzz_json, "encoded": fuzz_encoded}


def main(argv: list[str]) -> None:
    if argv[1:] == ["--seed"]:
        from fuzz_seeds import write_seeds

        write_seeds(CORPUS)
        return
    # libFuzzer runs itself again for -merge and -fork, with its own arguments only: the
    # target's name goes along in the environment.
    name, flags = (argv[1], argv[2:]) if argv[1:2] and argv[1] in TARGETS else (
        os.environ.get(TARGET_VARIABLE, ""), argv[1:])
    if name not in TARGETS:
        sys.exit(f"usage: {argv[0]} {{{','.join(TARGETS)}}} [libFuzzer flags] [corpus dirs]"
                 " | --seed")
    os.environ[TARGET_VARIABLE] = name
    # ... as a shell command line made of its argv[0]: this interpreter and this script
    command = f"{shlex.quote(sys.executable)} {shlex.quote(os.path.abspath(argv[0]))}"
    atheris.Setup([command, *flags], TARGETS[name])
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
