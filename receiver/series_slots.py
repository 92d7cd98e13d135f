"""The decoder's cache of committed series, shaped so a request's hits resolve in one step.

The hot loop looks a point's attribute bytes up in a dict and gets back a small int, a slot;
after the loop one numpy ``take`` turns every slot of the request into its series id and
flags.  Small ints cost a fraction of building tuples or big ints per point.

Several gRPC threads decode at once: lookups take no lock; ``add`` takes one and writes a slot
before publishing its key, and a full table is replaced by a new one, never cleared in place,
so a reader holding the old table still resolves its slots correctly.
"""

from __future__ import annotations

import threading

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
        self.lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.sid_list)

    def lookup(self, digest: bytes) -> dict[bytes, int]:
        """The key -> slot dict of one metric context (read-only for the caller)."""
        return self.index.get(digest, _EMPTY)

    def add(self, digest: bytes, key: bytes, sid: int, flags: int) -> None:
        with self.lock:
            slot = len(self.sid_list)
            if slot == len(self.sids):
                self.sids = np.concatenate([self.sids, np.zeros(slot, np.uint64)])
                self.flags = np.concatenate([self.flags, np.zeros(slot, np.uint32)])
            self.sids[slot] = sid
            self.flags[slot] = flags
            self.sid_list.append(sid)
            self.flag_list.append(flags)
            self.index.setdefault(digest, {})[key] = slot
