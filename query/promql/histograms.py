"""``histogram_quantile`` over classic buckets, exactly as Prometheus 2.42 computes it
(design §3.3 and Appendix A's ``bucket_quantile``, checked against 2.42 on hand-made bucket
sets): buckets grouped by their labels without ``le``, bounds read as Go's ``ParseFloat``
reads them, equal bounds coalesced, counts made monotonic, linear interpolation inside the
bucket the rank falls in.
"""

from __future__ import annotations

import math

from .params import go_float
from .values import Labels, Sample


def bucket_quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """The ``q`` quantile of ``(upper bound, cumulative count)`` buckets."""
    if math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    ordered = sorted(buckets, key=lambda b: b[0])
    if not math.isinf(ordered[-1][0]):
        return math.nan
    merged: list[list[float]] = []
    for upper, count in ordered:
        if merged and merged[-1][0] == upper:
            merged[-1][1] += count
        else:
            merged.append([upper, count])
    highest = merged[0][1]
    for bucket in merged[1:]:
        if bucket[1] > highest:
            highest = bucket[1]
        elif bucket[1] < highest:
            bucket[1] = highest
    if len(merged) < 2:
        return math.nan
    total = merged[-1][1]
    if total == 0:
        return math.nan
    rank = q * total
    b = next((i for i in range(len(merged) - 1) if merged[i][1] >= rank), len(merged) - 1)
    if b == len(merged) - 1:
        return merged[-2][0]
    if b == 0 and merged[0][0] <= 0:
        return merged[0][0]
    start, count = 0.0, merged[b][1]
    if b > 0:
        start = merged[b - 1][0]
        count -= merged[b - 1][1]
        rank -= merged[b - 1][1]
    return start + (merged[b][0] - start) * (rank / count)


def histogram_quantile(q: float, vector: list[Sample]) -> list[Sample]:
    """One sample per bucket group (labels without ``le`` and ``__name__``), in order of
    first appearance; samples without a readable ``le`` are left out."""
    groups: dict[Labels, tuple[Labels, list[tuple[float, float]]]] = {}
    for sample in vector:
        labels = dict(sample.labels)
        upper = go_float(labels.get("le", ""))
        if upper is None:
            continue
        signature = tuple((k, v) for k, v in sample.labels if k != "le")
        out_labels = tuple((k, v) for k, v in signature if k != "__name__")
        groups.setdefault(signature, (out_labels, []))[1].append((upper, sample.value))
    return [Sample(labels, bucket_quantile(q, buckets)) for labels, buckets in groups.values()]


__all__ = ["bucket_quantile", "histogram_quantile"]
