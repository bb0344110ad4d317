"""What each CPU-inference measure buys on AsymmNet-L, side by side in one process.

Prints three tables, every variant timed in interleaved rounds (medians):

1. ``operators``: MXNet's element-wise operators against those of
   :mod:`gluon_asymmnet.fastops` on AsymmNet-L-sized plain-layout tensors;
2. ``graphs``: ``mxnet-fused`` with and without the fast operators, on one
   OpenMP thread (MXNet 1.9.1's own choice on a machine without
   hyperthreads) and on every physical core (what the command lines
   set, :func:`gluon_asymmnet.cpu.configure_omp_threads`), at batch 1 and 32, 224x224;
3. ``int8-weights``: demo-digits top-1 of ``onnxruntime-int8`` with 8-bit
   and 7-bit weights (weights trained as in ``bench_inference.py``).

``--breakdown`` instead prints where ``mxnet-fused``, ``mxnet-int8`` and
``onnxruntime`` spend a batch: oneDNN's primitives (its ``DNNL_VERBOSE`` log,
from a child process) and onnxruntime's operators (its profiler).

Example::

    python benchmarks/bench_fastops.py
    python benchmarks/bench_fastops.py --tables graphs --rounds 12
    python benchmarks/bench_fastops.py --breakdown --batch 32
"""
import argparse
import atexit
import collections
import ctypes
import json
import os
import shutil
import subprocess
import sys
import tempfile

# Before mxnet is imported: see gluon_asymmnet.inference.benchmark on the engine.
os.environ.setdefault('MXNET_ENGINE_TYPE', 'NaiveEngine')
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if __name__ == '__main__':  # MXNet's OpenMP threads, before MXNet is imported (gluon_asymmnet.cpu)
    from gluon_asymmnet.cpu import configure_omp_threads
    configure_omp_threads(os.path.basename(__file__))

import gluon_asymmnet as ga  # noqa: E402
import mxnet as mx  # noqa: E402
import numpy as np  # noqa: E402
from gluon_asymmnet import fastops  # noqa: E402
from gluon_asymmnet.cpu import physical_cores  # noqa: E402
from benchmarks.demo_weights import demo_weights  # noqa: E402
from gluon_asymmnet.evaluation import calibration_images, eval_batches  # noqa: E402
from gluon_asymmnet.inference import build_predictor, export_onnx  # noqa: E402
from gluon_asymmnet.inference.ort import ort_session  # noqa: E402
from gluon_asymmnet.inference.timing import medians, time_interleaved  # noqa: E402
from gluon_asymmnet.metrics import predictor_accuracy  # noqa: E402

TABLES = ('operators', 'graphs', 'int8-weights')
MODEL = 'asymmnet_large'


def set_threads(n):
    """OpenMP threads of the calling thread, where NaiveEngine runs every operator."""
    mx.base._LIB.MXSetNumOMPThreads(ctypes.c_int(n))


def operator_table(rounds):
    """MXNet's operators against fastops' on AsymmNet-L-sized plain-layout tensors."""
    fastops.load()
    rng = np.random.RandomState(0)
    x = mx.nd.array(rng.uniform(-4, 4, (32, 480, 14, 14)))
    gate = mx.nd.array(rng.uniform(0, 1, (32, 480, 1, 1)))
    pairs = [
        ('hard swish', lambda: x * mx.nd.hard_sigmoid(x, alpha=1.0 / 6, beta=0.5), lambda: mx.nd.ga_hard_swish(x)),
        ('SE rescale', lambda: mx.nd.broadcast_mul(x, gate), lambda: mx.nd.ga_channel_scale(x, gate)),
        ('global average pooling',
         lambda: mx.nd.Pooling(x, kernel=(1, 1), global_pool=True, pool_type='avg'),
         lambda: mx.nd.ga_global_avg_pool(x)),
    ]
    lines = ['| operator on (32, 480, 14, 14), %d threads | MXNet (ms) | fastops (ms) | speed-up |' % physical_cores(),
             '|---|---:|---:|---:|']
    for name, ours, theirs in pairs:
        t = medians(time_interleaved({'mxnet': lambda: ours().wait_to_read(),
                                       'fast': lambda: theirs().wait_to_read()}, rounds))
        lines.append('| %s | %.2f | %.2f | %.1fx |' % (name, 1e3 * t['mxnet'], 1e3 * t['fast'],
                                                       t['mxnet'] / t['fast']))
    return '\n'.join(lines)


def graph_table(net, rounds, input_size=224, batches=(1, 32)):
    """mxnet-fused with and without fastops, on one thread and on every physical core."""
    cores = physical_cores()
    lines = ['| batch | threads | mxnet-fused (ms) | + fastops (ms) | fastops speed-up |', '|---:|---:|---:|---:|---:|']
    for batch in batches:
        x = np.random.RandomState(batch).standard_normal((batch, 3, input_size, input_size)).astype(np.float32)
        variants = {fast: build_predictor('mxnet-fused', net, batch, input_size, fast_ops=fast).run_batch
                    for fast in (False, True)}
        runners = {}
        for threads in sorted({1, cores}):
            for fast, run in variants.items():
                runners[threads, fast] = (lambda run=run, threads=threads: (set_threads(threads), run(x)))
        t = medians(time_interleaved(runners, rounds))
        set_threads(int(os.environ.get('OMP_NUM_THREADS') or cores))  # back to the process's setting
        for threads in sorted({1, cores}):
            lines.append('| %d | %d | %.1f | %.1f | %.2fx |' % (batch, threads, 1e3 * t[threads, False],
                                                                 1e3 * t[threads, True],
                                                                 t[threads, False] / t[threads, True]))
    return '\n'.join(lines)


def int8_weight_table(net, workdir):
    """Demo-digits top-1 of onnxruntime-int8 with 8-bit and 7-bit weights, against FP32 (at 32x32)."""
    batches, info = eval_batches(dataset='demo', batch_size=32)
    train_split = eval_batches(rec_val=ga.demo_dataset()['rec_train'], input_size=32, batch_size=64)[0]
    calib = calibration_images(train_split, 64)
    onnx_file = export_onnx(net, os.path.join(workdir, 'onnx-32'), 32)
    fp32 = predictor_accuracy(build_predictor('mxnet-fused', net, 32, 32), batches)['top1']
    lines = ['| onnxruntime-int8 weights | top-1 (%d demo images) | vs FP32 %.2f %% |' % (info['num_samples'],
                                                                                      100 * fp32),
             '|---|---:|---:|']
    for bits, reduce_range in (('8-bit', False), ('7-bit', True)):
        p = build_predictor('onnxruntime-int8', net, 32, 32, calib, os.path.join(workdir, bits), onnx_file=onnx_file,
                            ort_reduce_range=reduce_range)
        top1 = predictor_accuracy(p, batches)['top1']
        lines.append('| %s | %.2f %% | %+.2f points |' % (bits, 100 * top1, 100 * (top1 - fp32)))
    return '\n'.join(lines)


_DNNL_CHILD = """
import sys
sys.path.insert(0, %(root)r)
import numpy as np, gluon_asymmnet as ga
from gluon_asymmnet.evaluation import calibration_images, eval_batches
from gluon_asymmnet.inference import build_predictor
net = ga.get_model(%(model)r, **%(kwargs)r)
ga.load_checkpoint(net, %(params)r)
calib = None
if %(backend)r == 'mxnet-int8':
    train = eval_batches(rec_val=ga.demo_dataset()['rec_train'], input_size=32, batch_size=64)[0]
    calib = calibration_images(train, 64)
p = build_predictor(%(backend)r, net, %(batch)d, %(size)d, calib)
x = np.random.RandomState(0).standard_normal((%(batch)d, 3, %(size)d, %(size)d)).astype(np.float32)
p.run_batch(x); p.run_batch(x)
print('--- timed ---', flush=True)
p.run_batch(x)
"""


def onednn_breakdown(params, batch, backend='mxnet-fused', model=MODEL, input_size=224, kwargs=None):
    """Milliseconds per oneDNN primitive kind and implementation in one call of an MXNet backend."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, DNNL_VERBOSE='1')
    code = _DNNL_CHILD % dict(root=root, model=model, kwargs=dict(kwargs or {'classes': 10}), params=params,
                              backend=backend, batch=batch, size=input_size)
    out = subprocess.run([sys.executable, '-c', code], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, universal_newlines=True, check=True).stdout
    totals, calls = collections.Counter(), collections.Counter()
    for line in out.split('--- timed ---', 1)[1].splitlines():
        fields = line.split(',')
        if line.startswith('dnnl_verbose,exec'):
            totals[fields[3], fields[4]] += float(fields[-1])
            calls[fields[3], fields[4]] += 1
    return totals, calls


def ort_breakdown(net, batch, workdir, rounds):
    """Milliseconds per onnxruntime operator type in one call (its profiler, median run)."""
    path = export_onnx(net, os.path.join(workdir, 'onnx-224'), 224)
    session = ort_session(path, physical_cores(), profile_prefix=os.path.join(workdir, 'ort-profile'))
    x = {session.get_inputs()[0].name: np.random.RandomState(0).standard_normal((batch, 3, 224, 224))
         .astype(np.float32)}
    for _ in range(rounds + 2):
        session.run(None, x)
    with open(session.end_profiling()) as f:
        events = json.load(f)
    runs = sorted(e['dur'] for e in events if e.get('name') == 'model_run')[2:]
    totals = collections.Counter()
    for e in events:
        if e.get('cat') == 'Node' and e['name'].endswith('_kernel_time'):
            totals[e['args']['op_name']] += e['dur'] / 1e3 / (rounds + 2)
    return totals, float(np.median(runs)) / 1e3


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--tables', default=','.join(TABLES), help='comma-separated subset of %s' % ', '.join(TABLES))
    p.add_argument('--rounds', type=int, default=8)
    p.add_argument('--breakdown', action='store_true', help='where mxnet-fused and onnxruntime spend a batch')
    p.add_argument('--batch', type=int, default=32, help='batch of --breakdown')
    p.add_argument('--workdir', default=os.path.join('runs', 'bench_inference'))
    args = p.parse_args(argv)
    tables = [t for t in args.tables.split(',') if t]
    unknown = [t for t in tables if t not in TABLES]
    if unknown:
        p.error('unknown table(s) %s; choose from %s' % (', '.join(unknown), ', '.join(TABLES)))
    weights = demo_weights(MODEL, os.path.join(args.workdir, 'weights'), 15)
    net = ga.get_model(MODEL, **weights['kwargs'])
    ga.load_checkpoint(net, weights['params'])
    workdir = tempfile.mkdtemp(prefix='bench_fastops_')
    atexit.register(shutil.rmtree, workdir, True)  # the exported and quantized files
    print('%s, OMP_NUM_THREADS %s, %d physical cores, MXNet engine %s' % (
        MODEL, os.environ.get('OMP_NUM_THREADS'), physical_cores(), os.environ['MXNET_ENGINE_TYPE']))
    if args.breakdown:
        for backend in ('mxnet-fused', 'mxnet-int8'):
            totals, calls = onednn_breakdown(weights['params'], args.batch, backend)
            print('\n%s, batch %d: oneDNN primitives (DNNL_VERBOSE), %.1f ms in all'
                  % (backend, args.batch, sum(totals.values())))
            for key, ms in totals.most_common():
                print('  %-12s %-24s %4d calls %8.1f ms' % (key + (calls[key], ms)))
        totals, run_ms = ort_breakdown(net, args.batch, workdir, args.rounds)
        print('\nonnxruntime, batch %d: operators (its profiler), median run %.1f ms' % (args.batch, run_ms))
        for op, ms in totals.most_common():
            print('  %-24s %8.1f ms' % (op, ms))
        return 0
    if 'operators' in tables:
        print('\n' + operator_table(args.rounds))
    if 'graphs' in tables:
        print('\n' + graph_table(net, args.rounds))
    if 'int8-weights' in tables:
        print('\n' + int8_weight_table(net, workdir))
    return 0


if __name__ == '__main__':
    sys.exit(main())
