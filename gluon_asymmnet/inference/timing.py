"""Timing side by side: interleaved rounds, and where MXNet spends a call (its profiler).

The inference benchmark and the scripts of ``benchmarks/`` share these, so
every figure of the project is taken the same way: every contender once per
round, so that load changes on a shared machine hit all of them alike.
"""
import json
import os
import time

import mxnet as mx
import numpy as np

__all__ = ['time_interleaved', 'medians', 'operator_times']

# Engine bookkeeping, not operators.
_ENGINE_EVENTS = ('WaitForVar', 'DeleteVariable')


def time_interleaved(runners, rounds, warmup=1, settle=False, rotate=False, progress=None):
    """Seconds of each runner's call in every round, one call of each per round.

    Parameters
    ----------
    runners : dict
        ``{name: run}``; ``run()`` returns when its work is done.
    rounds : int
        Timed rounds.
    warmup : int
        Untimed rounds first.
    settle : bool
        An untimed call right before each timed one: the previous runner's
        worker threads may still be spinning (onnxruntime's and OpenMP's pools
        spin a while before they sleep).
    rotate : bool
        Start each round one runner later, so that no runner always follows
        the same one.
    progress : callable, optional
        Called after each round with the times so far.

    Returns
    -------
    dict
        ``{name: [seconds per round]}``.
    """
    names = list(runners)
    for _ in range(warmup):
        for name in names:
            runners[name]()
    times = {name: [] for name in names}
    for r in range(rounds):
        shift = r % len(names) if rotate else 0
        for name in names[shift:] + names[:shift]:
            if settle:
                runners[name]()
            start = time.perf_counter()
            runners[name]()
            times[name].append(time.perf_counter() - start)
        if progress is not None:
            progress(times)
    return times


def medians(times):
    """``{name: median}`` of :func:`time_interleaved`'s result."""
    return {name: float(np.median(t)) for name, t in times.items()}


def operator_times(run, calls=1):
    """Milliseconds per call of ``run`` that MXNet's profiler gives each operator.

    Set ``MXNET_EXEC_BULK_EXEC_INFERENCE=0`` (and ``..._TRAIN=0``) for the
    graphs that run, or static graphs run operators in bulk segments that the
    profiler times as one.

    Returns
    -------
    dict
        ``{operator: (ms per call, executions per call)}``, largest first.
    """
    mx.nd.waitall()
    mx.profiler.set_config(profile_all=True, aggregate_stats=True, filename=os.devnull)
    mx.profiler.dumps(reset=True)
    mx.profiler.set_state('run')
    try:
        for _ in range(calls):
            run()
        mx.nd.waitall()
    finally:
        mx.profiler.set_state('stop')
    stats = json.loads(mx.profiler.dumps(format='json', reset=True))['Time'].get('operator', {})
    ops = {name: (s['Total'] / calls, s['Count'] / calls) for name, s in stats.items()
           if name not in _ENGINE_EVENTS and s['Total'] > 0}
    return dict(sorted(ops.items(), key=lambda kv: -kv[1][0]))
