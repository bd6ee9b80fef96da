"""Interleaved timing shared by the latency benchmarks: every repeat runs each candidate once, in
turn, so that load from other processes hits all of them alike."""
from __future__ import annotations

import statistics
import time
from typing import Callable, Mapping


def interleaved_times(fns: Mapping[str, Callable[[], object]], repeats: int, warmup: int) -> dict[str, list[float]]:
    """``{name: [seconds per repeat]}`` after ``warmup`` untimed calls of each function."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return times


def summarise(times: Mapping[str, list[float]]) -> dict[str, dict]:
    """Median and best time of each candidate."""
    return {name: {"median_s": statistics.median(t), "min_s": min(t)} for name, t in times.items()}
