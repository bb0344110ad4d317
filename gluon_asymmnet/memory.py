"""Will a step fit in memory? An estimate from the network's activation sizes, made before the first step runs.

``--input-size 5000`` used to be accepted and then killed by the kernel's
OOM killer (exit 137, no message). :func:`check_step_fits` estimates the
memory of one training or inference step from a symbolic shape inference
(no array is allocated; the trace is kept per network structure, so a
process pays it once, ~0.2 s) and refuses, naming the estimate and the
memory available, where it cannot fit.

The estimate, calibrated on MXNet 1.9.1's CPU executor (static memory
planning; ``benchmarks/bench_memory.py`` prints it beside what the steps
took): a training step keeps every activation for the backward pass and
nearly as much again for the gradients, ``1.8 x`` the sum of all the graph's
outputs (measured 1.96 to 2.16), plus the weights, their gradients and the
momentum (``3 x`` the parameters). Inference reuses its buffers: ``2.5 x`` the
largest activation (measured 3.1 to 4.6) plus the weights. Both lean low, so
that a run which fits is not refused.

Available memory: the CPU's ``MemAvailable`` (and the cgroup's limit, where
lower), a GPU's free memory as MXNet reports it.
"""
import os

__all__ = ['MemoryEstimateError', 'step_bytes', 'available_bytes', 'check_step_fits']

_GIB = float(1 << 30)
_TRACES = {}   # network structure -> the symbol of all its outputs (the trace is what costs)


class MemoryEstimateError(ValueError):
    """A step that cannot fit in the memory available; the message names both."""


def _internals(net):
    import mxnet as mx
    key = (type(net).__name__, repr(net))
    if key not in _TRACES:
        _TRACES[key] = net(mx.sym.var('data')).get_internals()
        if len(_TRACES) > 16:
            _TRACES.pop(next(iter(_TRACES)))
    return _TRACES[key]


def step_bytes(net, batch, input_size, training, itemsize=4):
    """Estimated bytes one step of ``net`` needs for ``batch`` images of ``input_size`` (module notes).

    Returns
    -------
    dict
        ``bytes`` (the estimate), ``activations`` (sum of every output of the
        graph), ``largest`` (the largest one) and ``params`` (bytes of the
        parameters).
    """
    internals = _internals(net)
    args, outs, _ = internals.infer_shape(data=(batch, 3, input_size, input_size))
    sizes = [_count(s) for s in outs]
    params = sum(_count(s) for n, s in zip(internals.list_arguments(), args) if n != 'data') * itemsize
    activations, largest = sum(sizes) * itemsize, max(sizes) * itemsize
    need = int(1.8 * activations) + 3 * params if training else int(2.5 * largest) + params
    return dict(bytes=need, activations=activations, largest=largest, params=params)


def _count(shape):
    n = 1
    for d in shape:
        n *= int(d)
    return n


def _cgroup_room():
    for limit, usage in (('/sys/fs/cgroup/memory.max', '/sys/fs/cgroup/memory.current'),
                         ('/sys/fs/cgroup/memory/memory.limit_in_bytes', '/sys/fs/cgroup/memory/memory.usage_in_bytes')):
        try:
            with open(limit) as f:
                text = f.read().strip()
            with open(usage) as f:
                used = int(f.read().strip())
        except (OSError, ValueError):
            continue
        if text.isdigit() and int(text) < 1 << 60:
            return int(text) - used
    return None


def available_bytes(ctx):
    """``(bytes, where)``: the memory ``ctx`` can still allocate and how it was read, or ``(None, None)``."""
    if ctx.device_type == 'gpu':
        import mxnet as mx
        try:
            free, _ = mx.context.gpu_memory_info(ctx.device_id)
        except mx.base.MXNetError:
            return None, None
        return free, 'free on gpu(%d)' % ctx.device_id
    try:
        with open('/proc/meminfo') as f:
            info = dict(line.split(':', 1) for line in f if ':' in line)
        free, where = int(info['MemAvailable'].split()[0]) * 1024, 'MemAvailable'
    except (OSError, KeyError, ValueError):
        return None, None
    room = _cgroup_room()
    if room is not None and room < free:
        free, where = max(room, 0), "the cgroup's limit"
    return free, where


def check_step_fits(net, batch, input_size, ctx, training, what, fix):
    """Refuse a step of ``net`` that cannot fit in ``ctx``'s memory.

    Parameters
    ----------
    net : mxnet.gluon.HybridBlock
    batch, input_size : int
        Images per step on ``ctx``, and their side.
    ctx : mxnet.Context
    training : bool
        A training step (forward and backward) or an inference one.
    what : str
        The step, for the message (``'a training step of asymmnet_large'``).
    fix : str
        What to change (``'lower --batch-size or --input-size'``).

    Raises
    ------
    MemoryEstimateError
        Naming the estimate, its parts and the memory available. Nothing is
        refused where either cannot be told (a network that cannot be traced,
        no memory figure).
    """
    try:
        need = step_bytes(net, batch, input_size, training)
    except Exception:  # an estimate must never stop what would run
        return
    free, where = available_bytes(ctx)
    if free is None or need['bytes'] <= free:
        return
    parts = ('activations %.1f GiB, kept for the backward pass, and their gradients' % (
        need['activations'] / _GIB) if training else 'largest activation %.2f GiB' % (need['largest'] / _GIB))
    raise MemoryEstimateError(
        '%s at batch %d and input %dx%d needs about %.1f GiB of memory (%s; parameters %.2f GiB), more than the '
        '%.1f GiB available on %s (%s); %s' % (what, batch, input_size, input_size, need['bytes'] / _GIB, parts,
                                               need['params'] / _GIB, free / _GIB, ctx, where, fix))
