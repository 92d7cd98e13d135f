"""Parquet files that readers can scan while they are being replaced.

Every file is written under a hidden temporary name in the dataset's root (``.export-*.tmp``,
which no ``*.parquet`` glob matches), flushed to disk, then renamed over its final name in one
``os.replace``: a reader sees the old file or the new one, never half of one.  An exclusive
``flock`` on the root keeps two exports from rewriting the same files at once.  On any failure
the temporary file is removed, and a partition directory made for it too if it stayed empty;
the next export removes those of a process that was killed.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import uuid
from collections.abc import Callable, Iterable, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from otel_hms.export.spec import ExportBusy, ExportError

TMP_PREFIX = ".export-"


def prepare_root(path: str) -> list[str]:
    """Create the dataset root if missing and prove it can be written, or say what to fix.

    Returns the directories it created, deepest first, so an export that writes nothing can
    take them away again (``remove_created``)."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise ExportError(f"--to: {path} is a file, not a directory; pick a directory "
                          "(it is created if missing)")
    created = []
    missing = path
    while not os.path.exists(missing) and os.path.dirname(missing) != missing:
        created.append(missing)
        missing = os.path.dirname(missing)
    try:
        os.makedirs(path, exist_ok=True)
        probe = os.path.join(path, f".probe-{uuid.uuid4().hex}.tmp")
        with open(probe, "wb"):
            pass
        os.unlink(probe)
    except OSError as exc:
        remove_created(created)
        raise ExportError(f"--to: cannot write into {path} ({exc.strerror or exc}); pick a "
                          "directory this process may write to") from None
    return created


def remove_created(created: list[str]) -> None:
    """Remove the directories ``prepare_root`` created, each only while it is empty."""
    for directory in created:
        try:
            os.rmdir(directory)
        except OSError:
            return


@contextlib.contextmanager
def locked(root: str) -> Iterator[None]:
    """Hold an exclusive lock on ``root`` (the directory itself; no lock file is left)."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise ExportBusy(f"--to: another export is writing into {root}; wait for it "
                                 "to finish and run this one again") from None
            raise
        _remove_stale(root)
        yield
    finally:
        os.close(fd)


def _remove_stale(root: str) -> None:
    """Temporary files of an export that was killed: nobody else writes them while we hold
    the lock."""
    for entry in os.scandir(root):
        if entry.name.startswith(TMP_PREFIX) and entry.name.endswith(".tmp"):
            with contextlib.suppress(OSError):
                os.unlink(entry.path)


def _fsync(path: str, flags: int = os.O_RDONLY) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_kept(path: str, schema: pa.Schema,
              keep: Callable[[pa.RecordBatch], pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """The rows of an existing file that ``keep`` keeps, in ``schema``'s types."""
    try:
        source = pq.ParquetFile(path)
        for batch in source.iter_batches(batch_size=100_000):
            kept = keep(batch)
            if kept.num_rows:
                yield kept.cast(schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError, ValueError,
            KeyError) as exc:
        raise ExportError(f"--to: {path} is not a file this otel-hms wrote ({exc}); export "
                          "into a new directory or delete that file") from None


def _missing_dirs(root: str, directory: str) -> list[str]:
    """The directories between ``root`` (exclusive) and ``directory`` that do not exist yet."""
    missing = []
    while directory != root and not os.path.isdir(directory):
        missing.append(directory)
        directory = os.path.dirname(directory)
    return missing  # deepest first


def replace_file(root: str, final: str, schema: pa.Schema,
                 batches: Iterable[pa.RecordBatch]) -> int:
    """Write ``batches`` to ``final`` (a path under ``root``) atomically; the row count."""
    tmp = os.path.join(root, f"{TMP_PREFIX}{uuid.uuid4().hex}.tmp")
    partition = os.path.dirname(final)
    made = _missing_dirs(root, partition)
    rows = 0
    try:
        with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
            for batch in batches:
                writer.write_batch(batch)
                rows += batch.num_rows
        _fsync(tmp)
        os.makedirs(partition, exist_ok=True)
        os.replace(tmp, final)
        _fsync(partition, os.O_RDONLY | os.O_DIRECTORY)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        for directory in made:
            with contextlib.suppress(OSError):  # only succeeds while it is empty
                os.rmdir(directory)
        if isinstance(exc, OSError):
            raise ExportError(f"--to: writing {final} failed ({exc.strerror or exc}); fix "
                              "that and run the export again (files already written are "
                              "whole)") from None
        raise
    return rows
