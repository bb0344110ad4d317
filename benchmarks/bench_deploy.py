"""AsymmNet-L against MobileNetV3-L where they are deployed, before and after the deployment rewrite.

Both models get weights trained on the bundled demo digits
(``demo_weights.py``; INT8 needs real calibration images) and are built in
every backend twice: ``before``, the network's own inference graph
(``build_predictor(..., deploy=False)``), and ``after``, its deployment form
(:func:`gluon_asymmnet.deploy.deploy_network`, plus
:func:`gluon_asymmnet.export.ort_layout.optimize` in onnxruntime FP32).
Every predictor runs once per round, all interleaved in one process, so load
from other processes hits them alike; each round also gives one ratio per
pair. ``--models A,B`` compares another pair (e.g.
``mobilenetv2_asymm,mobilenetv2``).

Printed: the CPU (:func:`gluon_asymmnet.cpu.cpu_description`), per backend
and batch the median milliseconds per batch of each model and form, the
ratio ``B time / A time`` (speed of A relative to B; 1.0 = as fast) before
and after, with the range of the per-round ratios, each model in its best
form; the fastest MXNet FP32 path against onnxruntime FP32 on A; the targets
of issue 14 (ratio >= 0.90 in onnxruntime FP32 and INT8, MXNet FP32 >=
onnxruntime FP32); demo top-1 of every INT8 row against FP32.

``--profile`` prints instead, for both models after the rewrite, the
milliseconds per operator type of one call in onnxruntime FP32 and INT8 (its
profiler) and per oneDNN primitive in ``mxnet-fused`` (``DNNL_VERBOSE``, the
breakdown of ``bench_fastops.py``). ``--alternatives`` times A in the other
deployment forms (:class:`gluon_asymmnet.deploy.DeployForm`).

``--threads 1 --clock cpu`` times each call by the CPU time of the calling
thread (onnxruntime and MXNet's NaiveEngine both run there with one thread):
figures that other processes on a shared machine barely move.

Example::

    python benchmarks/bench_deploy.py                          # 2 models x 2 forms x 4 backends x batch 1, 32
    python benchmarks/bench_deploy.py --rounds 30 --backends onnxruntime,onnxruntime-int8
    python benchmarks/bench_deploy.py --threads 1 --clock cpu --rounds 20
    python benchmarks/bench_deploy.py --backends onnxruntime,mxnet-fused --profile
"""
import argparse
import atexit
import collections
import json
import os
import shutil
import sys
import tempfile
import time

# Before mxnet is imported: see gluon_asymmnet.inference.benchmark on the engine.
os.environ.setdefault('MXNET_ENGINE_TYPE', 'NaiveEngine')
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if __name__ == '__main__':  # MXNet's OpenMP threads (--threads, else the physical cores), before MXNet is imported
    from gluon_asymmnet.cpu import configure_omp_threads_from_flag
    configure_omp_threads_from_flag(os.path.basename(__file__))

import mxnet as mx  # noqa: E402
import numpy as np  # noqa: E402

import gluon_asymmnet as ga  # noqa: E402
from benchmarks.demo_weights import demo_weights  # noqa: E402
from gluon_asymmnet.cpu import cpu_description, physical_cores  # noqa: E402
from gluon_asymmnet.deploy import DeployForm, deploy_network  # noqa: E402
from gluon_asymmnet.evaluation import calibration_images, eval_batches  # noqa: E402
from gluon_asymmnet.export import ort_layout  # noqa: E402
from gluon_asymmnet.inference import REGISTRY, build_predictor, export_onnx  # noqa: E402
from gluon_asymmnet.inference.ort import ort_runner, ort_session  # noqa: E402
from gluon_asymmnet.metrics import predictor_accuracy  # noqa: E402

MODELS = ('asymmnet_large', 'mobilenetv3_large')
BACKENDS = ('onnxruntime', 'onnxruntime-int8', 'mxnet-fused', 'mxnet-int8')
FORMS = ('before', 'after')
SHORT = {'asymmnet_large': 'AsymmNet-L', 'mobilenetv3_large': 'MobileNetV3-L', 'asymmnet_small': 'AsymmNet-S',
         'mobilenetv3_small': 'MobileNetV3-S', 'mobilenetv2_asymm': 'MobileNetV2-asymm', 'mobilenetv2': 'MobileNetV2'}
TARGET_RATIO = 0.90


def ort_profile(model, batch, input_size, workdir, threads, rounds=10):
    """Milliseconds per onnxruntime operator type in one call of an ONNX model (file or bytes; its profiler).

    Each node counts with its fastest call, the one least disturbed by other processes.
    """
    session = ort_session(model, threads, spinning=False, profile_prefix=os.path.join(workdir, 'ort-profile'))
    x = {session.get_inputs()[0].name: np.random.RandomState(0).standard_normal(
        (batch, 3, input_size, input_size)).astype(np.float32)}
    for _ in range(rounds):
        session.run(None, x)
    with open(session.end_profiling()) as f:
        events = json.load(f)
    fastest, kind = {}, {}
    for e in events:
        if e.get('cat') == 'Node' and e['name'].endswith('_kernel_time'):
            fastest[e['name']] = min(fastest.get(e['name'], float('inf')), e['dur'] / 1e3)
            kind[e['name']] = e['args']['op_name']
    totals, counts = collections.Counter(), collections.Counter()
    for name, ms in fastest.items():
        totals[kind[name]] += ms
        counts[kind[name]] += 1
    return totals, counts


def print_profiles(title, profiles):
    """Side-by-side table of ``{model: (totals, counts)}`` per operator type."""
    names = list(profiles)
    ops = sorted({op for totals, _ in profiles.values() for op in totals},
                 key=lambda op: -max(profiles[n][0].get(op, 0) for n in names))
    print('\n%s\n| operator | %s |\n|---|%s' % (title, ' | '.join('%s nodes | %s ms' % (SHORT[n], SHORT[n])
                                                                  for n in names), '---:|---:|' * len(names)))
    for op in ops:
        print('| %s | %s |' % (op, ' | '.join('%d | %.2f' % (profiles[n][1].get(op, 0), profiles[n][0].get(op, 0))
                                              for n in names)))
    print('| all | %s |' % ' | '.join('%d | %.2f' % (sum(profiles[n][1].values()), sum(profiles[n][0].values()))
                                      for n in names))


def ort_file_runner(path, threads, batch=None):
    """onnxruntime on the file at ``path``, rewritten by ``ort_layout.optimize`` for ``batch`` unless None."""
    model = path if batch is None else ort_layout.optimize(path, batch).SerializeToString()
    return ort_runner(ort_session(model, threads, spinning=False))


def with_channel_multiplier(deployed):
    """``deployed`` (a form that joins x's copies) with each join of copies restated as one depthwise
    convolution with channel multiplier ``2r`` over ``x``: no concat at all (issue 14's first suggestion).

    Exact: output channel ``c * m + k`` of the new convolution is copy ``k``'s channel ``c``, and the
    SE and projection weights that read those channels are permuted alike. Measured here, not shipped
    (neither runtime has a fast kernel for a channel multiplier above 1: benchmarks/README.md).
    """
    for block in deployed.features:
        sources = getattr(block, 'sources', None)
        if not sources or len(sources[0]) < 2 or set(sources[0]) != {'x'}:
            continue
        m, dw = len(sources[0]), block.dw[0]
        weight, bias = dw.weight.data(), dw.bias.data()
        channels = weight.shape[0] // m
        order = mx.nd.array(np.arange(m * channels).reshape(m, channels).T.reshape(-1), dtype='int64')
        conv = mx.gluon.nn.Conv2D(m * channels, weight.shape[2:], strides=dw._kwargs['stride'],
                                  padding=dw._kwargs['pad'], groups=channels, in_channels=channels,
                                  prefix=dw.prefix + 'multiplier_')
        conv.initialize(ctx=weight.context)
        conv.cast(weight.dtype)
        conv.weight.set_data(weight.take(order, axis=0))
        conv.bias.set_data(bias.take(order))
        block.dw.register_child(conv, '0')
        for layer, axis in ([(block.proj[0], 1)] + ([(block.se.reduce[0], 1), (block.se.gate[0], 0)]
                                                     if block.se is not None else [])):
            layer.weight.set_data(layer.weight.data().take(order, axis=axis))
            if axis == 0:
                layer.bias.set_data(layer.bias.data().take(order))
        block.sources[0] = ('x',)
    return deployed


def alternative_forms(net, batch, input_size):
    """The forms ``--alternatives`` compares: name -> (network, ort_layout on)."""
    forms = {'original graph': (net, False)}
    for small in ('', ', all where small'):
        for concat in ('none', 'copies', 'all'):
            for align, pad_outputs in ((16, True), (16, False), (1, False)):
                if small and concat == 'all':
                    continue
                forms['join %s%s, align %d%s' % (concat, small, align, '' if pad_outputs else ' inside blocks')] = (
                    deploy_network(net, batch if small else None, input_size, DeployForm(align, pad_outputs, concat)),
                    True)
    for small in ('', ', all where small'):
        forms['x\'s copies as one depthwise convolution with channel multiplier%s, align 16 inside blocks' % small] = (
            with_channel_multiplier(deploy_network(net, batch if small else None, input_size,
                                                   DeployForm(16, False, 'copies'))), True)
    forms['join none, all where small, align 16, without ort_layout'] = (deploy_network(net, batch, input_size),
                                                                          False)
    return forms


def interleaved(runners, inputs, rounds, clock):
    """Per-round seconds of each runner (one untimed, then one timed call per round)."""
    times = {key: [] for key in runners}
    for key, run in runners.items():
        run(inputs[key[-1]])
    for _ in range(rounds):
        for key, run in runners.items():
            x = inputs[key[-1]]
            run(x)
            start = clock()
            run(x)
            times[key].append(clock() - start)
    return {key: np.array(t) for key, t in times.items()}


def ratio(times, fast_key, slow_key):
    """(ratio of the medians, min and max of the per-round ratios): fast / slow time."""
    rounds = times[fast_key] / times[slow_key]
    return float(np.median(times[fast_key]) / np.median(times[slow_key])), float(rounds.min()), float(rounds.max())


def run_alternatives(nets, models, backends, batches, args, calib, threads, inputs, workdir, clock):
    a, b = models
    runners = {}
    for batch in batches:
        for backend in backends:
            forms = alternative_forms(nets[a], batch, args.input_size)
            forms['%s, its form for the backend' % SHORT[b]] = (deploy_network(
                nets[b], batch, args.input_size, REGISTRY[backend].deploy_form), True)
            for form, (net, layout) in forms.items():
                if 'without ort_layout' in form and backend != 'onnxruntime':
                    continue
                print('building %s %s batch %d' % (backend, form, batch), flush=True)
                folder = os.path.join(workdir, 'alt-%d' % len(runners))
                if backend == 'onnxruntime':
                    run = ort_file_runner(export_onnx(net, folder, args.input_size), threads, batch if layout else None)
                else:
                    run = build_predictor(backend, net, batch, args.input_size, calib, folder, threads,
                                          ort_spinning=False).run_batch
                runners[backend, form, batch] = run
    times = interleaved(runners, inputs, args.rounds, clock)
    print('\n| backend | batch | %s form | ms per batch (median) | range of rounds |' % SHORT[a])
    print('|---|---:|---|---:|---|')
    for (backend, form, batch), t in sorted(times.items(), key=lambda kv: (kv[0][0], kv[0][2])):
        print('| %s | %d | %s | %.2f | %.2f-%.2f |' % (backend, batch, form, 1e3 * np.median(t), 1e3 * t.min(),
                                                     1e3 * t.max()))


def run_profiles(nets, weights, models, backends, batches, args, calib, threads, workdir):
    from benchmarks.bench_fastops import onednn_breakdown
    for batch in batches:
        if 'onnxruntime' in backends:
            profiles = {}
            for name in models:
                path = export_onnx(deploy_network(nets[name], batch, args.input_size),
                                   os.path.join(workdir, 'profile-%s-%d' % (name, batch)), args.input_size)
                profiles[name] = ort_profile(ort_layout.optimize(path, batch).SerializeToString(), batch,
                                             args.input_size, workdir, threads)
            print_profiles('onnxruntime FP32 after the rewrite, batch %d (fastest call of each node):' % batch,
                           profiles)
        if 'onnxruntime-int8' in backends:
            profiles = {}
            for name in models:
                folder = os.path.join(workdir, 'profile-int8-%s-%d' % (name, batch))
                build_predictor('onnxruntime-int8', nets[name], batch, args.input_size, calib, folder, threads)
                path = os.path.join(folder, 'onnxruntime-int8-%dx%d' % (args.input_size, args.input_size),
                                    'model-int8.onnx')
                profiles[name] = ort_profile(path, batch, args.input_size, workdir, threads)
            print_profiles('onnxruntime-int8 after the rewrite, batch %d (fastest call of each node):' % batch,
                           profiles)
        if 'mxnet-fused' in backends:
            for name in models:
                totals, calls = onednn_breakdown(weights[name]['params'], batch, 'mxnet-fused', name,
                                                 args.input_size, weights[name]['kwargs'])
                print('\nmxnet-fused, %s after the rewrite, batch %d: oneDNN primitives (DNNL_VERBOSE), '
                      '%.1f ms in all' % (SHORT[name], batch, sum(totals.values())))
                for key, ms in totals.most_common():
                    print('  %-12s %-28s %4d calls %8.2f ms' % (key + (calls[key], ms)))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--models', default=','.join(MODELS), help='A,B: A timed against B (%s)' % ', '.join(SHORT))
    p.add_argument('--backends', default=','.join(BACKENDS))
    p.add_argument('--batches', default='1,32', help='batch sizes (latency, throughput)')
    p.add_argument('--input-size', type=int, default=224)
    p.add_argument('--rounds', type=int, default=20)
    p.add_argument('--threads', type=int, help='OpenMP and onnxruntime threads (default: physical cores)')
    p.add_argument('--clock', choices=('wall', 'cpu'), default='wall',
                   help="'cpu': CPU time of the calling thread (with --threads 1)")
    p.add_argument('--train-epochs', type=int, default=15, help='demo-digits training of the weights')
    p.add_argument('--workdir', default=os.path.join('runs', 'bench_inference'))
    p.add_argument('--profile', action='store_true', help='instead: per-operator profiles after the rewrite')
    p.add_argument('--alternatives', action='store_true',
                   help='instead: the first model in the alternative deployment forms')
    args = p.parse_args(argv)
    models = tuple(m for m in args.models.split(',') if m)
    backends = [b for b in args.backends.split(',') if b]
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown:
        p.error('unknown backend(s) %s; choose from %s' % (', '.join(unknown), ', '.join(BACKENDS)))
    if len(models) != 2 or not set(models) <= set(SHORT):
        p.error('--models takes two of %s, got %r' % (', '.join(SHORT), args.models))
    if args.clock == 'cpu' and args.threads != 1:
        p.error('--clock cpu needs --threads 1 (other threads\' CPU time is not counted)')
    batches = [int(b) for b in args.batches.split(',')]
    threads = args.threads or physical_cores()
    clock = time.thread_time if args.clock == 'cpu' else time.perf_counter
    workdir = tempfile.mkdtemp(prefix='bench_deploy_')
    atexit.register(shutil.rmtree, workdir, True)  # the exported and quantized files
    demo, info = eval_batches(dataset='demo', batch_size=64)
    train_split = eval_batches(rec_val=ga.demo_dataset()['rec_train'], input_size=info['input_size'],
                               batch_size=64)[0]
    calib = calibration_images(train_split, 64)
    print(cpu_description())
    print('OMP_NUM_THREADS %s, onnxruntime threads %d (no spinning), MXNet engine %s, clock %s, %d rounds, %dx%d'
          % (os.environ.get('OMP_NUM_THREADS'), threads, os.environ['MXNET_ENGINE_TYPE'], args.clock, args.rounds,
             args.input_size, args.input_size), flush=True)

    nets, weights, top1 = {}, {}, {}
    for name in models:
        weights[name] = demo_weights(name, os.path.join(args.workdir, 'weights'), args.train_epochs)
        nets[name] = ga.get_model(name, **weights[name]['kwargs'])
        ga.load_checkpoint(nets[name], weights[name]['params'])
        top1[name, 'fp32'] = predictor_accuracy(build_predictor('mxnet', nets[name], 64, info['input_size']),
                                                demo)['top1']
    inputs = {batch: np.random.RandomState(batch).standard_normal(
        (batch, 3, args.input_size, args.input_size)).astype(np.float32) for batch in batches}
    if args.alternatives:
        run_alternatives(nets, models, backends, batches, args, calib, threads, inputs, workdir, clock)
        return 0
    if args.profile:
        run_profiles(nets, weights, models, backends, batches, args, calib, threads, workdir)
        return 0
    runners = {}
    for backend in backends:
        for name in models:
            for form in FORMS:
                deploy = form == 'after'
                if backend.endswith('int8'):
                    # Accuracy of the INT8 form at the demo's size (the form chosen for batch 64 there).
                    acc = build_predictor(backend, nets[name], 64, info['input_size'], calib, workdir, threads,
                                          ort_spinning=False, deploy=deploy)
                    top1[name, backend, form] = predictor_accuracy(acc, demo)['top1']
                for batch in batches:
                    print('building %s %s %s batch %d' % (backend, name, form, batch), flush=True)
                    runners[backend, name, form, batch] = build_predictor(
                        backend, nets[name], batch, args.input_size, calib, workdir, threads, ort_spinning=False,
                        deploy=deploy).run_batch
    times = interleaved(runners, inputs, args.rounds, clock)
    ms = {key: 1e3 * float(np.median(t)) for key, t in times.items()}

    a, b = models
    print('\n| backend | batch | %s before | after | %s before | after | ratio before | ratio after (best forms) |'
          % (SHORT[a], SHORT[b]))
    print('|---|---:|---:|---:|---:|---:|---|---|')
    targets = []
    for backend in backends:
        for batch in batches:
            best_b = min(FORMS, key=lambda f: ms[backend, b, f, batch])
            best_a = min(FORMS, key=lambda f: ms[backend, a, f, batch])
            before = ratio(times, (backend, b, 'before', batch), (backend, a, 'before', batch))
            after = ratio(times, (backend, b, best_b, batch), (backend, a, best_a, batch))
            print('| %s | %d | %.2f | %.2f | %.2f | %.2f | %.2f (%.2f-%.2f) | %.2f (%.2f-%.2f) A:%s B:%s |'
                  % ((backend, batch) + tuple(ms[backend, n, f, batch] for n in (a, b) for f in FORMS)
                     + before + after + (best_a, best_b)))
            if backend.startswith('onnxruntime'):
                targets.append(('%s/%s %s b%d >= %.2f' % (SHORT[a], SHORT[b], backend, batch, TARGET_RATIO),
                                after[0], after[0] >= TARGET_RATIO))
    if 'onnxruntime' in backends and 'mxnet-fused' in backends:
        print('\nFastest MXNet FP32 path against onnxruntime FP32 on %s (after the rewrite; '
              'speed ratio = onnxruntime time / MXNet time):' % SHORT[a])
        for batch in batches:
            mx_form = min(FORMS, key=lambda f: ms['mxnet-fused', a, f, batch])
            r = ratio(times, ('onnxruntime', a, 'after', batch), ('mxnet-fused', a, mx_form, batch))
            print('  batch %d: mxnet-fused (%s) %.2f ms, onnxruntime %.2f ms: %.2fx (%.2f-%.2f)'
                  % ((batch, mx_form, ms['mxnet-fused', a, mx_form, batch], ms['onnxruntime', a, 'after', batch])
                     + r))
            targets.append(('MXNet FP32 >= onnxruntime FP32 on %s b%d' % (SHORT[a], batch), r[0], r[0] >= 1.0))
    int8 = [k for k in backends if k.endswith('int8')]
    if int8:
        print('\nDemo-digits top-1 (%d held-out images at %dx%d; INT8 calibrated on 64 training images):'
              % (info['num_samples'], info['input_size'], info['input_size']))
        for name in models:
            cells = ['FP32 %.2f %%' % (100 * top1[name, 'fp32'])]
            cells += ['%s %s %.2f %%' % (k, f, 100 * top1[name, k, f]) for k in int8 for f in FORMS]
            print('  %s: %s' % (SHORT[name], ', '.join(cells)))
    if args.input_size != 224:  # the targets are for ImageNet's input size
        print('\nTargets: not judged (they are for 224x224 inputs; this run: %dx%d)' % (args.input_size,
                                                                                        args.input_size))
        return 0
    print('\nTargets:')
    for text, value, met in targets:
        print('  %-62s %.2f  %s' % (text, value, 'MET' if met else 'MISSED'))
    return 0


if __name__ == '__main__':
    sys.exit(main())
