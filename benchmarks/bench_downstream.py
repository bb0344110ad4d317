"""MobilePose and CenterNet over AsymmNet-L against the same models over MobileNetV3-L, in onnxruntime.

Each model is exported by :func:`gluon_asymmnet.downstream.export.export_downstream`
(backbone in its deployment form, raw outputs: heatmaps, CenterNet's heads)
for each batch size: FP32 in the ``BLOCKED`` form rewritten by
:func:`gluon_asymmnet.export.ort_layout.optimize`, INT8 in the ``NHWC``
form (chosen for the batch, in a file of dynamic batch) quantized by
onnxruntime (static QDQ, per-channel weights, calibrated on random images:
speed does not depend on the weights). Every session runs once
per round, all interleaved in one process, so load from other processes hits
them alike.

Printed: the CPU, per model pair, backend and batch the median milliseconds
per batch of each, and the ratio ``MobileNetV3-L time / AsymmNet-L time``
(AsymmNet-L's speed relative to MobileNetV3-L; 1.0 = as fast) with the range
of the per-round ratios; against the aim of issue 18 (>= 0.95).

Example::

    python benchmarks/bench_downstream.py                            # pose 256x192, CenterNet 512x512, batch 1, 8
    python benchmarks/bench_downstream.py --threads 1 --clock cpu --rounds 10
"""
import argparse
import atexit
import os
import shutil
import sys
import tempfile
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if __name__ == '__main__':  # MXNet's OpenMP threads before MXNet is imported
    from gluon_asymmnet.cpu import configure_omp_threads_from_flag
    configure_omp_threads_from_flag(os.path.basename(__file__))

import mxnet as mx  # noqa: E402
import numpy as np  # noqa: E402

import gluon_asymmnet as ga  # noqa: E402
from benchmarks.bench_deploy import interleaved, ratio  # noqa: E402
from gluon_asymmnet.cpu import cpu_description, physical_cores  # noqa: E402
from gluon_asymmnet.deploy import BLOCKED, NHWC  # noqa: E402
from gluon_asymmnet.downstream.export import export_downstream  # noqa: E402
from gluon_asymmnet.export import ort_layout  # noqa: E402
from gluon_asymmnet.inference.ort import ort_runner, ort_session  # noqa: E402
from gluon_asymmnet.inference.quantize import ort_int8  # noqa: E402

# (task, AsymmNet-L model, MobileNetV3-L model, default input size)
PAIRS = [('pose', 'mobile_pose_asymmnet_large', 'mobile_pose_mobilenetv3_large', (256, 192)),
         ('center_net', 'center_net_asymmnet_large_duc_voc', 'center_net_mobilenetv3_large_duc_voc', (512, 512))]
BACKENDS = ('onnxruntime', 'onnxruntime-int8')
AIM = 0.95


def model(name, size):
    """The model with initialized weights (Xavier; BatchNorm statistics at their defaults)."""
    net = ga.get_model(name, **({} if name.startswith('mobile_pose') else dict(pretrained_base=False)))
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        net.initialize(mx.init.Xavier())
    net(mx.nd.zeros((1, 3) + size))
    return net


def session(net, backend, batch, size, folder, threads):
    """An onnxruntime session of the model's export for ``backend`` at ``batch``."""
    os.makedirs(folder, exist_ok=True)
    prefix = os.path.join(folder, 'model')
    if backend == 'onnxruntime':
        path = export_downstream(net, prefix, size, formats=('onnx',), batch_size=batch, verify=False,
                                 form=BLOCKED)['onnx']
        import onnx
        onnx.save(ort_layout.optimize(path, batch), path)
        return ort_session(path, threads, spinning=False)
    # The form chosen for the batch, in a file of dynamic batch: the calibration runs batches of 8.
    path = export_downstream(net, prefix, size, formats=('onnx',), batch_size=batch, verify=False, form=NHWC,
                             fixed_batch=False)['onnx']
    calib = np.random.RandomState(0).standard_normal((16, 3) + size).astype(np.float32)
    return ort_int8(path, folder, (batch, 3) + size, calib, [], threads, False)[0]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--tasks', default='pose,center_net')
    p.add_argument('--backends', default=','.join(BACKENDS))
    p.add_argument('--batches', default='1,8')
    p.add_argument('--pose-size', default='256,192', help='height,width of the pose input')
    p.add_argument('--center-net-size', default='512,512', help='height,width of the CenterNet input')
    p.add_argument('--rounds', type=int, default=10)
    p.add_argument('--threads', type=int, help='OpenMP and onnxruntime threads (default: physical cores)')
    p.add_argument('--clock', choices=('wall', 'cpu'), default='wall',
                   help="'cpu': CPU time of the calling thread (with --threads 1)")
    args = p.parse_args(argv)
    if args.clock == 'cpu' and args.threads != 1:
        p.error('--clock cpu needs --threads 1 (other threads\' CPU time is not counted)')
    tasks = [t for t in args.tasks.split(',') if t]
    backends = [b for b in args.backends.split(',') if b]
    if not set(tasks) <= {t for t, *_ in PAIRS} or not set(backends) <= set(BACKENDS):
        p.error('--tasks takes pose, center_net; --backends %s' % ', '.join(BACKENDS))
    batches = [int(b) for b in args.batches.split(',')]
    sizes = {'pose': tuple(int(s) for s in args.pose_size.split(',')),
             'center_net': tuple(int(s) for s in args.center_net_size.split(','))}
    threads = args.threads or physical_cores()
    clock = time.thread_time if args.clock == 'cpu' else time.perf_counter
    workdir = tempfile.mkdtemp(prefix='bench_downstream_')
    atexit.register(shutil.rmtree, workdir, True)
    print(cpu_description())
    print('onnxruntime threads %d (no spinning), clock %s, %d rounds' % (threads, args.clock, args.rounds), flush=True)

    runners, inputs = {}, {}
    for task, a, b, _ in [pair for pair in PAIRS if pair[0] in tasks]:
        size = sizes[task]
        for name in (a, b):
            net = model(name, size)
            for backend in backends:
                for batch in batches:
                    print('building %s %s batch %d at %dx%d' % (backend, name, batch, size[0], size[1]), flush=True)
                    folder = os.path.join(workdir, '%s-%s-%d' % (name, backend, batch))
                    # The last key element picks the input (bench_deploy.interleaved): task and batch.
                    runners[task, backend, name, (task, batch)] = ort_runner(
                        session(net, backend, batch, size, folder, threads))
        for batch in batches:
            inputs[task, batch] = np.random.RandomState(batch).standard_normal((batch, 3) + size).astype(np.float32)
    times = interleaved(runners, inputs, args.rounds, clock)

    print('\n%-11s %-17s %5s %12s %12s %7s  %s' % ('task', 'backend', 'batch', 'AsymmNet-L', 'MobileNetV3-L',
                                                  'ratio', 'per-round range'))
    worst = None
    for task, a, b, _ in [pair for pair in PAIRS if pair[0] in tasks]:
        for backend in backends:
            for batch in batches:
                ka, kb = (task, backend, a, (task, batch)), (task, backend, b, (task, batch))
                r, low, high = ratio(times, kb, ka)
                worst = r if worst is None else min(worst, r)
                print('%-11s %-17s %5d %9.1f ms %10.1f ms %7.3f  %.3f-%.3f  (%dx%d)'
                      % (task, backend, batch, 1e3 * np.median(times[ka]), 1e3 * np.median(times[kb]), r, low, high,
                         sizes[task][0], sizes[task][1]))
    print('\nratio = MobileNetV3-L time / AsymmNet-L time; aim >= %.2f: %s (lowest %.3f)'
          % (AIM, 'met' if worst >= AIM else 'NOT met', worst))
    return 0


if __name__ == '__main__':
    sys.exit(main())
