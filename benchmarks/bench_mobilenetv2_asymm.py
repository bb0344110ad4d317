"""MobileNetV2 against MobileNetV2 with asymmetrical bottlenecks at equal MAdds, trained alike on the bundled digits.

The AsymmNet paper calls its bottleneck a drop-in replacement for existing
blocks; its authors back that with ``get_mobilenetv2_asymm``. This script
tests the claim small, on a CPU, in one process:

1. Width pairs. For every MobileNetV2 width, the MobileNetV2-asymm multiplier
   whose MAdds at the training input size match: the same multiplier when
   the two are within ``--madds-tolerance`` (the asymmetrical block moves a
   little computation from the expansion to the depthwise and projection
   convolutions), else the closest multiplier in steps of 0.005.
2. Training. Each network of a pair is trained by the library behind
   ``train_imagenet.py`` with the same recipe and budget: ``demo``
   (``gluon_asymmnet/training/recipes.py``: the bundled 10-class digits at
   32x32, batch 64, cosine schedule with warm-up, weight decay 1e-4, dropout
   0.2) at ``--lr`` for ``--epochs``, once per seed, the networks interleaved
   seed by seed. Reported: held-out top-1 of the last epoch and the best
   epoch (359 validation images: one image is 0.28 points), per seed.
3. CPU throughput of the two trained networks side by side: one SGD step and
   one inference pass (static graphs, oneDNN on; ``benchmarks/bench_train_infer.py``'s
   runners), and the ``mxnet-fused`` inference backend (convolution, BatchNorm
   and ReLU6 fused by oneDNN), at the training size and at 224x224, in
   interleaved rounds. Median images/s, and the ratio asymm / MobileNetV2 of the
   medians with the range of the per-round ratios.
4. With ``--int8``, held-out top-1 of the last seed's networks in the FP32
   and INT8 backends of :mod:`gluon_asymmnet.inference` (before step 3, whose
   training steps change the weights).

Example::

    python benchmarks/bench_mobilenetv2_asymm.py                         # x0.5, r1, 3 seeds, 10 epochs
    python benchmarks/bench_mobilenetv2_asymm.py --widths 0.5 1.0 --int8
"""
import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if __name__ == '__main__':  # MXNet's OpenMP threads, before MXNet is imported (gluon_asymmnet.cpu)
    from gluon_asymmnet.cpu import configure_omp_threads
    configure_omp_threads(os.path.basename(__file__))

import gluon_asymmnet as ga  # noqa: E402
import mxnet as mx  # noqa: E402
import numpy as np  # noqa: E402
from benchmarks.bench_train_infer import benchmark as throughput  # noqa: E402
from gluon_asymmnet.cpu import cpu_description  # noqa: E402
from gluon_asymmnet.training import train, train_recipe  # noqa: E402

BASE, ASYMM = 'mobilenetv2', 'mobilenetv2_asymm'


def macs(name, multiplier, asymmrate, input_size):
    kwargs = dict(asymmrate=asymmrate) if name == ASYMM else {}
    return ga.profile(ga.get_model(name, multiplier=multiplier, classes=10, **kwargs), input_size)


def width_pair(multiplier, asymmrate, input_size, tolerance):
    """The MobileNetV2-asymm multiplier for MobileNetV2 at ``multiplier`` (see the module docstring)."""
    target = macs(BASE, multiplier, 0, input_size)['macs']

    def gap(m):
        try:
            return abs(macs(ASYMM, m, asymmrate, input_size)['macs'] / target - 1)
        except ValueError:  # a width the asymmetrical block cannot build
            return float('inf')
    if gap(multiplier) <= tolerance:
        return multiplier
    candidates = [round(multiplier * (0.8 + 0.005 * k), 4) for k in range(81)]
    return min(candidates, key=lambda m: (gap(m), abs(m - multiplier)))


def train_one(name, multiplier, asymmrate, seed, args, folder):
    """Train one network by the ``demo`` recipe; returns (result, seconds). Its log goes to the run folder."""
    kwargs = dict(asymmrate=asymmrate) if name == ASYMM else {}
    run = os.path.join(folder, '%s-x%g-r%d-seed%d' % (name, multiplier, asymmrate, seed))
    cfg = train_recipe('demo', model=name, width_scale=multiplier, lr=args.lr, num_epochs=args.epochs, seed=seed,
                       save_dir=run, **kwargs)
    start = time.perf_counter()
    with open(os.path.join(folder, 'stdout.log'), 'a') as log, contextlib.redirect_stdout(log):
        result = train(cfg)
    return result, time.perf_counter() - start


def int8_rows(nets, calib_images=64):
    """Held-out top-1 of each network in the FP32 and INT8 backends."""
    from gluon_asymmnet.data import demo_dataset
    from gluon_asymmnet.evaluation import calibration_images, eval_batches
    from gluon_asymmnet.inference import build_predictor
    from gluon_asymmnet.metrics import predictor_accuracy
    batches, _ = eval_batches(dataset='demo', batch_size=64)
    calib = calibration_images(eval_batches(rec_val=demo_dataset()['rec_train'], input_size=32, batch_size=64)[0],
                               calib_images)
    rows = {}
    for label, net in nets.items():
        rows[label] = {b: predictor_accuracy(build_predictor(b, net, 64, 32, calib=calib), batches)['top1']
                       for b in ('mxnet', 'mxnet-int8', 'onnxruntime-int8')}
    return rows


def fused_throughput(nets, batch_size, image_size, rounds):
    """Images/s per round of each network's ``mxnet-fused`` inference backend (conv + BN + ReLU6 fused), interleaved."""
    from gluon_asymmnet.inference import build_predictor
    from gluon_asymmnet.inference.timing import time_interleaved
    x = np.random.RandomState(0).uniform(-1, 1, (batch_size, 3, image_size, image_size)).astype(np.float32)
    runners = {}
    for label, net in nets.items():
        predictor = build_predictor('mxnet-fused', net, batch_size, image_size)
        runners[label] = lambda p=predictor: p(x)
    seconds = time_interleaved(runners, rounds, warmup=1, rotate=True)
    return {label: [batch_size / t for t in ts] for label, ts in seconds.items()}


def _spread(values):
    return '%.2f [%.2f-%.2f]' % (100 * statistics.mean(values), 100 * min(values), 100 * max(values))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--widths', type=float, nargs='+', default=[0.5], help='MobileNetV2 widths')
    parser.add_argument('--asymmrate', type=int, default=1)
    parser.add_argument('--seeds', type=int, default=3)
    parser.add_argument('--epochs', type=int, default=10)
    parser.add_argument('--lr', type=float, default=0.05,
                        help="the demo recipe's learning rate for both (its 0.2 makes MobileNetV2 diverge)")
    parser.add_argument('--madds-tolerance', type=float, default=0.02)
    parser.add_argument('--rounds', type=int, default=5, help='interleaved throughput rounds')
    parser.add_argument('--int8', action='store_true', help='also held-out top-1 in the INT8 backends')
    parser.add_argument('--out', help='folder for the runs (default: a temporary one)')
    args = parser.parse_args(argv)
    folder = args.out or tempfile.mkdtemp(prefix='bench_mobilenetv2_asymm_')
    os.makedirs(folder, exist_ok=True)
    r = args.asymmrate
    print('CPU %s, OMP threads %s, MXNet %s, oneDNN %s; runs in %s' % (
        cpu_description(), os.environ.get('OMP_NUM_THREADS', 'default'), mx.__version__,
        'on' if mx.runtime.Features().is_enabled('MKLDNN') else 'off', folder))
    print("recipe: demo (digits 32x32, batch 64, cosine, warm-up 2, wd 1e-4, dropout 0.2), lr %g, %d epochs, "
          "seeds 0-%d\n" % (args.lr, args.epochs, args.seeds - 1))

    print('| pair | network | width | MAdds at 32 | MAdds at 224 | params | last top-1 %, mean [min-max] | '
          'best top-1 % | per seed (last) | training s, mean |')
    print('|---|---|---:|---:|---:|---:|---:|---:|---|---:|')
    trained, partner = {}, {}
    for width in args.widths:
        pair = [(BASE, width, 0), (ASYMM, width_pair(width, r, 32, args.madds_tolerance), r)]
        outcome = {p: [] for p in pair}
        for seed in range(args.seeds):
            for p in pair:
                outcome[p].append(train_one(*p, seed, args, folder))
        labels = ['%s x%g' % (name, m) + (' r%d' % rate if rate else '') for name, m, rate in pair]
        partner[labels[1]] = labels[0]
        for (name, m, rate), label in zip(pair, labels):
            runs = outcome[name, m, rate]
            last = [res['history'][-1]['top1'] for res, _ in runs]
            best = [res['best_top1'] for res, _ in runs]
            small, large = macs(name, m, rate, 32), macs(name, m, rate, 224)
            print('| x%g | %s | %g | %s | %s | %s | %s | %s | %s | %.0f |' % (
                width, name + (' r%d' % rate if rate else ''), m, '{:,}'.format(small['macs']),
                '{:,}'.format(large['macs']), '{:,}'.format(large['params']), _spread(last), _spread(best),
                ' '.join('%.1f' % (100 * v) for v in last), statistics.mean(s for _, s in runs)), flush=True)
            trained[label] = runs[-1][0]['net']

    if args.int8:
        print('\nheld-out top-1 % of the last seed\'s networks, FP32 and INT8 backends (64 calibration images):')
        print('| network | mxnet (fp32) | mxnet-int8 | onnxruntime-int8 |')
        print('|---|---:|---:|---:|')
        for label, row in int8_rows(trained).items():
            print('| %s | %.2f | %.2f | %.2f |' % (label, *(100 * row[b] for b in ('mxnet', 'mxnet-int8',
                                                                                     'onnxruntime-int8'))))

    # Last: the throughput runners take SGD steps on random data, which changes the weights.
    for size, batch in ((32, 64), (224, 8)):
        results = throughput(trained, batch_size=batch, image_size=size, rounds=args.rounds, graphs=('static',))
        results['infer mxnet-fused', 'static'] = fused_throughput(trained, batch, size, args.rounds)
        names = list(trained)
        print('\nCPU throughput at %dx%d, batch %d, static graphs, %d interleaved rounds: median img/s; '
              'ratio of medians to the MobileNetV2 of the pair [per-round range]' % (size, size, batch, args.rounds))
        print('| setting | ' + ' | '.join(names) + ' |')
        print('|---|' + '---:|' * len(names))
        for (mode, _), per in results.items():
            cells = []
            for n in names:
                med = statistics.median(per[n])
                base = partner.get(n)
                if base is None:
                    cells.append('%.1f' % med)
                else:
                    ratios = [a / b for a, b in zip(per[n], per[base])]
                    cells.append('%.1f (%.2f [%.2f-%.2f])' % (med, med / statistics.median(per[base]),
                                                             min(ratios), max(ratios)))
            print('| %s | ' % mode + ' | '.join(cells) + ' |', flush=True)

    return 0


if __name__ == '__main__':
    sys.exit(main())
