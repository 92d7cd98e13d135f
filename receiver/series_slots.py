"""The decoder's cache of committed series, shaped so a request's hits resolve in one step.

The hot loop looks a point's attribute bytes up in a dict and gets back a small int, a slot;
after the loop one numpy ``take`` turns every slot of the request into its series id and
flags.  Small ints cost a fraction of building tuples or big ints per point.

A slot may also hold a series not yet committed, with its row (``rows``): the points of a
new series then take the bulk path from their second request on, and the decoder adds the
row to each batch until the series is stored (``confirm``).

Several gRPC threads decode at once: lookups take no lock; ``add`` takes one and writes a slot
before publishing its key, and a full table is replaced by a new one, never cleared in place,
so a reader holding the old table still resolves its slots correctly.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import numpy.typing as npt

_EMPTY: dict[bytes, int] = {}


class SeriesSlots:
    """Key bytes per metric context -> slot; slot -> series id and point flags."""

    def __init__(self, capacity: int = 4096) -> None:
        self.index: dict[bytes, dict[bytes, int]] = {}
        self.sids: npt.NDArray[np.uint64] = np.zeros(capacity, np.uint64)
        self.flags: npt.NDArray[np.uint32] = np.zeros(capacity, np.uint32)
        self.sid_list: list[int] = []
        self.flag_list: list[int] = []
        self.rows: list[Any] = []  # the series row while not committed, else None
        self.pending: npt.NDArray[np.bool_] = np.zeros(capacity, np.bool_)
        self.pending_count = 0
        self.lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.sid_list)

    def lookup(self, digest: bytes) -> dict[bytes, int]:
        """The key -> slot dict of one metric context (read-only for the caller)."""
        return self.index.get(digest, _EMPTY)

    def add(self, digest: bytes, key: bytes, sid: int, flags: int, row: Any = None) -> None:
        with self.lock:
            slot = len(self.sid_list)
            if slot == len(self.sids):
                self.sids = np.concatenate([self.sids, np.zeros(slot, np.uint64)])
                self.flags = np.concatenate([self.flags, np.zeros(slot, np.uint32)])
                self.pending = np.concatenate([self.pending, np.zeros(slot, np.bool_)])
            self.sids[slot] = sid
            self.flags[slot] = flags
            self.pending[slot] = row is not None
            self.pending_count += row is not None
            self.sid_list.append(sid)
            self.flag_list.append(flags)
            self.rows.append(row)
            self.index.setdefault(digest, {})[key] = slot

    def confirm(self, slot: int) -> None:
        """The slot's series is committed: its row need not travel any more."""
        with self.lock:
            if self.rows[slot] is not None:
                self.rows[slot] = None
                self.pending[slot] = False
                self.pending_count -= 1

    def pending_slots(self, slots: list[int]) -> list[int]:
        """The distinct slots among ``slots`` whose series are not committed yet."""
        if not self.pending_count or not slots:
            return []
        arr = np.asarray(slots, np.intp)
        return [int(s) for s in np.unique(arr[self.pending[arr]])]
