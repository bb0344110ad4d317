"""CPU inference backends side by side: AsymmNet-L and MobileNetV3-L, FP32 and INT8, with the targets.

For each model, weights trained on the bundled demo digits (trained once by
the training library and kept in ``--workdir``) give the accuracy and
INT8-error columns on the digits' held-out split (32x32, as trained, INT8
calibrated on the digits' training split); the timings run at
``--input-size`` (224 by default), batch 1 (latency) and batch 32
(throughput), every backend once per round, in one process. Then the issue's
two targets are checked on the table (:func:`benchmarks.reports.target_status`).

``--profile`` instead prints where the MXNet backends spend their time
(:func:`gluon_asymmnet.inference.operator_profile`: milliseconds per call in
each operator, bulk execution off).

Example::

    python benchmarks/bench_inference.py
    python benchmarks/bench_inference.py --models asymmnet_large --repeats 40
    python benchmarks/bench_inference.py --models asymmnet_large --profile
"""
import argparse
import os
import sys

# Before mxnet is imported: see gluon_asymmnet.inference.benchmark on the engine.
os.environ.setdefault('MXNET_ENGINE_TYPE', 'NaiveEngine')
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if __name__ == '__main__':  # MXNet's OpenMP threads, before MXNet is imported (gluon_asymmnet.cpu)
    from gluon_asymmnet.cpu import configure_omp_threads
    configure_omp_threads(os.path.basename(__file__))

from benchmarks.demo_weights import demo_weights  # noqa: E402
from benchmarks.reports import format_profile, format_targets, target_status  # noqa: E402
from gluon_asymmnet import get_model, load_checkpoint  # noqa: E402
from gluon_asymmnet.evaluation import benchmark_model, calibration_images, eval_batches  # noqa: E402
from gluon_asymmnet.inference import BACKENDS, format_benchmark, operator_profile  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--models', default='asymmnet_large,mobilenetv3_large')
    p.add_argument('--backends', default=','.join(BACKENDS))
    p.add_argument('--input-size', type=int, default=224)
    p.add_argument('--latency-batch', type=int, default=1)
    p.add_argument('--throughput-batch', type=int, default=32)
    p.add_argument('--warmup', type=int, default=5)
    p.add_argument('--repeats', type=int, default=20)
    p.add_argument('--train-epochs', type=int, default=15, help='demo-digits training of the weights')
    p.add_argument('--workdir', default=os.path.join('runs', 'bench_inference'))
    p.add_argument('--profile', action='store_true', help='per-operator time of the MXNet backends instead')
    args = p.parse_args(argv)
    backends = [b for b in args.backends.split(',') if b]
    batches, info = eval_batches(dataset='demo', batch_size=args.throughput_batch)
    for name in args.models.split(','):
        weights = demo_weights(name, os.path.join(args.workdir, 'weights'), args.train_epochs)
        net = get_model(name, **weights['kwargs'])
        load_checkpoint(net, weights['params'])
        if args.profile:
            calib = calibration_images(batches, 64)
            for backend in ('mxnet-fused', 'mxnet-int8'):
                for batch in (args.latency_batch, args.throughput_batch):
                    prof = operator_profile(net, backend, batch, args.input_size, repeats=args.repeats, calib=calib)
                    print()
                    print(format_profile(prof, '%s %s, batch %d at %dx%d' % (name, backend, batch, args.input_size,
                                                                             args.input_size)))
            continue
        result = benchmark_model(net, backends, batches=batches, info=info, input_size=args.input_size,
                                 batch_sizes=(args.latency_batch, args.throughput_batch), warmup=args.warmup,
                                 repeats=args.repeats, workdir=os.path.join(args.workdir, name))
        print()
        print(format_benchmark(result, '%s x1.0: timings at %dx%d; accuracy on the demo digits (%d held-out '
                                       'images, 32x32, weights trained %d epochs on the digits)'
                               % (name, args.input_size, args.input_size, info['num_samples'], args.train_epochs)))
        print('INT8 calibration: %s.' % result['setup']['calibration'])
        print()
        print(format_targets(target_status(result)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
