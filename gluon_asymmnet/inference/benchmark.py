"""The backends side by side: latency, throughput, error against float32 and accuracy; per-operator time."""
import contextlib
import os
import tempfile

import mxnet as mx
import numpy as np

from ..cpu import physical_cores
from ..metrics import predictor_accuracy, relative_error
from .backends import BACKENDS, REGISTRY, build_predictor, get_backend
from .predictor import input_shape
from .timing import medians, operator_times, time_interleaved

__all__ = ['benchmark', 'format_benchmark', 'operator_profile']


def benchmark(net, backends=BACKENDS, input_size=224, batch_sizes=(1, 32), warmup=5, repeats=20,
              calib=None, eval_batches=None, eval_input_size=None, threads=None, workdir=None,
              calib_mode='naive', exclude=None, seed=0, progress=None, ort_spinning=False, deploy=None):
    """Latency, throughput, error against float32 and accuracy of every backend, side by side.

    Run it with ``MXNET_ENGINE_TYPE=NaiveEngine`` (``eval.py --benchmark``
    and ``benchmarks/bench_inference.py`` set it): with MXNet's default
    threaded engine, small-batch calls stay slower for the rest of the
    process once a large graph has run in it; on the calling thread they do
    not (figures: ``benchmarks/README.md``). The engine in use is recorded in
    ``setup['mxnet_engine']``.

    onnxruntime's worker threads do not spin here unless ``ort_spinning``:
    idle but spinning, they keep a core busy while the next backend runs and
    so slow it down when the backends are interleaved.

    Parameters
    ----------
    net : HybridBlock
        Initialized float32 network (the reference).
    backends : sequence of str
    input_size : int
        Image side for the timings.
    batch_sizes : (int, int)
        Latency batch (median milliseconds per batch) and throughput batch
        (images per second); both timed interleaved across backends.
    warmup, repeats : int
        Untimed calls, then timed rounds (one call of every backend per round).
    calib : numpy.ndarray, optional
        Real, preprocessed calibration images for the INT8 backends.
    eval_batches : iterable of (data, label), optional
        Accuracy data; its images also give the error check's input.
    eval_input_size : int, optional
        Image side of ``eval_batches`` (default ``input_size``).
    threads : int, optional
        Threads of onnxruntime (default physical cores; MXNet takes
        ``OMP_NUM_THREADS``).
    workdir : str, optional
        Where the ONNX and INT8 files are written, and stay (default: a
        temporary folder, removed at the end).
    calib_mode, exclude, deploy
        See :func:`~gluon_asymmnet.inference.build_predictor`.
    seed : int
        Seed of the random error-check input when no data is given.
    progress : callable, optional
        Called with a message before each step.

    Returns
    -------
    dict
        ``rows``: one dict per backend with ``backend``, ``precision``,
        ``latency_ms``, ``throughput``, ``rel_error``, ``top1``/``top5`` (with
        data), ``info``; and ``setup``: sizes, threads, repeats.
    """
    say = progress or (lambda msg: None)
    unknown = [b for b in backends if b not in REGISTRY]
    if unknown or not backends:
        raise ValueError('unknown backend(s) %s; choose from %s' % (', '.join(unknown), ', '.join(REGISTRY)))
    if len(batch_sizes) != 2:
        raise ValueError('batch_sizes needs (latency batch, throughput batch), got %r' % (batch_sizes,))
    threads = threads or physical_cores()
    with contextlib.ExitStack() as stack:
        if workdir is None:  # removed at the end: every predictor holds what it loaded
            workdir = stack.enter_context(tempfile.TemporaryDirectory(prefix='gluon_asymmnet_bench_'))
        eval_size = eval_input_size or input_size
        rows = {b: {'backend': b, 'precision': get_backend(b).precision} for b in backends}

        # Error check input: real images when given, else a fixed random batch.
        if eval_batches is not None:
            check = next(iter(eval_batches))[0]
            check = check.asnumpy() if hasattr(check, 'asnumpy') else np.asarray(check, np.float32)
        else:
            check = np.random.RandomState(seed).standard_normal(input_shape(batch_sizes[1], (eval_size,) * 2))
            check = check.astype(np.float32)
        reference = net(mx.nd.array(check)).asnumpy()

        cache = {}

        def predictor(b, batch, size):
            # Each builds its own ONNX file: the deployment form depends on the backend and the batch size.
            if (b, batch, size) not in cache:
                say('building %s (batch %d, %dx%d)' % (b, batch, size, size))
                cache[b, batch, size] = build_predictor(
                    b, net, batch, size, calib, os.path.join(workdir, 'b%d-%d' % (batch, size)), threads,
                    calib_mode, exclude, ort_spinning=ort_spinning, deploy=deploy)
            return cache[b, batch, size]

        for b in backends:
            p = predictor(b, batch_sizes[1], eval_size)
            rows[b]['rel_error'] = relative_error(p(check), reference)
            rows[b]['info'] = p.info
            if eval_batches is not None:
                say('accuracy of %s' % b)
                acc = predictor_accuracy(p, eval_batches)
                rows[b].update(top1=acc['top1'], top5=acc['top5'], num_samples=acc['num_samples'])
        for key, batch in zip(('latency_ms', 'throughput'), batch_sizes):
            say('timing batch %d at %dx%d' % (batch, input_size, input_size))
            x = np.random.RandomState(seed + 1).standard_normal(input_shape(batch, (input_size,) * 2))
            x = x.astype(np.float32)
            runners = {b: (lambda run=predictor(b, batch, input_size).run_batch: run(x)) for b in backends}
            for b, seconds in medians(time_interleaved(runners, repeats, warmup, settle=True)).items():
                rows[b][key] = seconds * 1e3 if key == 'latency_ms' else batch / seconds
    setup = dict(input_size=input_size, eval_input_size=eval_size, batch_sizes=tuple(batch_sizes),
                 warmup=warmup, repeats=repeats, onnxruntime_threads=threads,
                 omp_num_threads=os.environ.get('OMP_NUM_THREADS'), physical_cores=physical_cores(),
                 mxnet_engine=os.environ.get('MXNET_ENGINE_TYPE', 'ThreadedEnginePerDevice'),
                 ort_spinning=ort_spinning)
    return {'rows': [rows[b] for b in backends], 'setup': setup}


def format_benchmark(result, title=None):
    """Render :func:`benchmark`'s result as a Markdown table, speed-ups against ``onnxruntime``/``mxnet``."""
    rows, setup = result['rows'], result['setup']
    base = next((r for r in rows if r['backend'] == 'onnxruntime'), None) or rows[0]
    with_acc = any('top1' in r for r in rows)
    head = ['backend', 'precision', 'latency b%d (ms)' % setup['batch_sizes'][0],
            'throughput b%d (img/s)' % setup['batch_sizes'][1], 'speed vs %s (b%d)' % (base['backend'],
                                                                                    setup['batch_sizes'][1]),
            'rel. error vs FP32']
    if with_acc:
        head += ['top-1', 'top-5']
    lines = []
    if title:
        lines += [title, '']
    lines += ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for r in rows:
        cells = [r['backend'], r['precision'], '%.2f' % r['latency_ms'], '%.1f' % r['throughput'],
                 '%.2fx' % (r['throughput'] / base['throughput']), '%.1e' % r['rel_error']]
        if with_acc:
            cells += ['%.2f %%' % (100 * r['top1']), '%.2f %%' % (100 * r['top5'])] if 'top1' in r else ['', '']
        lines.append('| ' + ' | '.join(cells) + ' |')
    lines.append('')
    lines.append('%dx%d input, medians of %d interleaved rounds after %d warm-up; onnxruntime threads %d, '
                 '%sspinning, OMP_NUM_THREADS %s, MXNet engine %s, %d physical cores.'
                 % (setup['input_size'], setup['input_size'], setup['repeats'], setup['warmup'],
                    setup['onnxruntime_threads'], '' if setup.get('ort_spinning') else 'no ',
                    setup['omp_num_threads'] or 'unset', setup['mxnet_engine'], setup['physical_cores']))
    deployed = [r['backend'] for r in rows if r.get('info', {}).get('deployed')]
    if deployed:
        lines.append('%s run the deployment form (gluon_asymmnet.deploy).' % ', '.join(deployed))
    fast = [r['backend'] for r in rows if r.get('info', {}).get('fast_ops')]
    failed = [r for r in rows if r.get('info', {}).get('fast_ops_error')]
    if fast:
        lines.append('%s with the fused operators of gluon_asymmnet.fastops.' % ', '.join(fast))
    if failed:
        lines.append('gluon_asymmnet.fastops unavailable (%s): %s' % (', '.join(r['backend'] for r in failed),
                                                                     failed[0]['info']['fast_ops_error']))
    return '\n'.join(lines)


def operator_profile(net, backend='mxnet-fused', batch_size=32, input_size=224, repeats=5, calib=None):
    """Milliseconds per call spent in each MXNet operator of an MXNet backend (MXNet's profiler).

    Bulk execution is switched off while the graph is built and run, so that
    every operator is timed on its own; the per-call wall time is measured
    on a separate, normally built predictor. What the operators do not cover
    is framework overhead (dispatch, synchronisation, memory planning).

    Returns
    -------
    dict
        ``operators``: ``{name: ms per call}``, largest first; ``wall_ms``:
        median wall time per call with bulk execution on.
    """
    if get_backend(backend).runtime != 'mxnet':
        raise ValueError('operator_profile profiles MXNet backends, not %r' % backend)
    x = np.random.RandomState(0).standard_normal(input_shape(batch_size, (input_size, input_size)))
    x = x.astype(np.float32)
    normal = build_predictor(backend, net, batch_size, input_size, calib)
    wall = medians(time_interleaved({backend: lambda: normal.run_batch(x)}, repeats, 2, settle=True))[backend]
    previous = os.environ.get('MXNET_EXEC_BULK_EXEC_INFERENCE')
    os.environ['MXNET_EXEC_BULK_EXEC_INFERENCE'] = '0'
    try:
        p = build_predictor(backend, net, batch_size, input_size, calib)
        p.run_batch(x)
        ops = operator_times(lambda: p.run_batch(x), repeats)
    finally:
        if previous is None:
            del os.environ['MXNET_EXEC_BULK_EXEC_INFERENCE']
        else:
            os.environ['MXNET_EXEC_BULK_EXEC_INFERENCE'] = previous
    return {'operators': {name: ms for name, (ms, _) in ops.items()}, 'wall_ms': wall * 1e3}
