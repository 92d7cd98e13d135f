"""A bounded set of series ids that keeps the ones in use: two generations, not a full LRU.

Ids go into the young generation; when it holds half the capacity it becomes the old one and
the previous old one is dropped.  An id found in the old generation moves back to the young,
so an id in use at least once per half-capacity additions stays, and the set never holds
more than ``capacity`` ids.  Lookups cost one or two set probes and take no lock: several
threads read while one adds (a reader that races a turnover may miss an id, which callers
treat as "not known": they re-check, never lose data).

``complete`` stays True while nothing has been dropped (and the set started with every id),
so a caller may trust a miss without asking the store.  Additions (and the moves back from
the old generation) take a lock, so a turnover is never lost to a race.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable


class RecentIds:
    """Series ids seen lately, at most ``capacity`` of them."""

    def __init__(self, capacity: int, ids: Iterable[int] = (), complete: bool = True) -> None:
        if capacity < 2:
            raise ValueError("a RecentIds needs a capacity of at least 2")
        self.capacity = capacity
        self._young: set[int] = set()
        self._old: set[int] = set()
        self.complete = complete
        self._lock = threading.Lock()
        self.update(ids)

    def __contains__(self, sid: object) -> bool:
        if sid in self._young:
            return True
        if sid in self._old:
            self.add(sid)
            return True
        return False

    def __len__(self) -> int:
        return len(self._young) + len(self._old)

    def add(self, sid: int) -> None:
        with self._lock:
            self._add(sid)

    def update(self, ids: Iterable[int]) -> None:
        with self._lock:
            for sid in ids:
                self._add(sid)

    def _add(self, sid: int) -> None:
        young = self._young
        young.add(sid)
        if len(young) >= self.capacity // 2:
            if self._old - young:
                self.complete = False
            self._old, self._young = young, set()
