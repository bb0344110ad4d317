"""Training and inference throughput of AsymmNet-L against GluonCV's MobileNetV3-L on CPU.

Both networks (and our own ``mobilenetv3_large``, for transparency) are built
in one process and measured in interleaved rounds: every round times each
model once per setting, so background load on a shared machine hits all of
them alike. The table reports median images per second over the rounds and
the ratio of medians AsymmNet-L / GluonCV MobileNetV3-L, with the range of
the per-round ratios.

Settings: ``train`` is one SGD step (forward, backward, momentum update) with
softmax cross-entropy; ``infer`` is one forward pass outside autograd.
``static`` is ``hybridize(static_alloc=True, static_shape=True)``,
``imperative`` is no hybridization. oneDNN stays at MXNet's default (on).

Example::

    python benchmarks/bench_train_infer.py --batch-size 32 --rounds 5
"""
import argparse
import os
import statistics
import sys
import time

import mxnet as mx
from mxnet import autograd, gluon

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import gluon_asymmnet as ga  # noqa: E402

MODES = ('train', 'infer')
GRAPHS = ('static', 'imperative')
REFERENCE = 'gluoncv mobilenetv3_large'


def build_models(names=('asymmnet_large', 'mobilenetv3_large', REFERENCE), classes=1000, seed=0):
    """Initialised networks by display name: ours via ``gluon_asymmnet``, GluonCV's by ``'gluoncv <name>'``."""
    models = {}
    for name in names:
        mx.random.seed(seed)
        if name.startswith('gluoncv '):
            from gluoncv.model_zoo import get_model as gcv_get_model
            net = gcv_get_model(name.split(' ', 1)[1], classes=classes)
        else:
            net = ga.get_model(name, classes=classes)
        net.initialize(mx.init.MSRAPrelu())
        models[name] = net
    return models


class Runner:
    """One network in one graph mode, ready to run a training step or an inference pass."""

    def __init__(self, net, graph, batch_size, image_size):
        if graph == 'static':
            net.hybridize(static_alloc=True, static_shape=True)
        elif graph != 'imperative':
            raise ValueError('graph must be one of %s, got %r' % (', '.join(GRAPHS), graph))
        self.net, self.batch_size = net, batch_size
        self.data = mx.nd.random.uniform(-1, 1, (batch_size, 3, image_size, image_size))
        self.label = mx.nd.array([i % 10 for i in range(batch_size)])
        self.loss = gluon.loss.SoftmaxCrossEntropyLoss()
        self.trainer = gluon.Trainer(net.collect_params(), 'sgd',
                                     {'learning_rate': 0.01, 'momentum': 0.9, 'wd': 3e-5})

    def train(self):
        with autograd.record():
            loss = self.loss(self.net(self.data), self.label)
        loss.backward()
        self.trainer.step(self.batch_size)
        return loss

    def infer(self):
        return self.net(self.data)

    def throughput(self, mode, iters):
        """Images per second over ``iters`` calls of ``mode`` (after all pending work is done)."""
        step = getattr(self, mode)
        mx.nd.waitall()
        start = time.perf_counter()
        for _ in range(iters):
            step()
        mx.nd.waitall()
        return iters * self.batch_size / (time.perf_counter() - start)


def benchmark(models, batch_size=32, image_size=224, rounds=5, iters=1, warmup=1,
              modes=MODES, graphs=GRAPHS, log=None):
    """Interleaved throughput measurements.

    Parameters
    ----------
    models : dict
        Display name -> initialised network (see :func:`build_models`).
    batch_size, image_size : int
        Input batch ``(batch_size, 3, image_size, image_size)``.
    rounds : int
        Interleaved rounds; the model order rotates from round to round.
    iters : int
        Timed calls per model per round.
    warmup : int
        Untimed calls per model and setting before the first round.
    modes, graphs : sequence of str
        Subsets of :data:`MODES` and :data:`GRAPHS`.
    log : callable, optional
        Called with a progress line after every round.

    Returns
    -------
    dict
        ``{(mode, graph): {name: [img/s per round]}}``.
    """
    if rounds < 1 or iters < 1 or warmup < 0:
        raise ValueError('rounds and iters must be >= 1 and warmup >= 0, got rounds=%r iters=%r warmup=%r'
                         % (rounds, iters, warmup))
    names = list(models)
    results = {}
    for graph in graphs:
        runners = {n: Runner(models[n], graph, batch_size, image_size) for n in names}
        for mode in modes:
            for name in names:
                for _ in range(warmup):
                    getattr(runners[name], mode)()
            mx.nd.waitall()
            per_model = {n: [] for n in names}
            for r in range(rounds):
                order = names[r % len(names):] + names[:r % len(names)]
                for name in order:
                    per_model[name].append(runners[name].throughput(mode, iters))
                if log:
                    log('%s %s round %d/%d: %s' % (mode, graph, r + 1, rounds, ', '.join(
                        '%s %.1f' % (n, per_model[n][-1]) for n in names)))
            results[(mode, graph)] = per_model
        if graph == 'static':
            # Drop the static graphs so the imperative runs see the plain blocks.
            for net in models.values():
                net.hybridize(False)
    return results


def format_table(results, ours='asymmnet_large', reference=REFERENCE):
    """Markdown table: median img/s per model, ratio of medians ours/reference, per-round ratio range."""
    names = list(next(iter(results.values())))
    lines = ['| setting | ' + ' | '.join('%s img/s' % n for n in names)
             + ' | %s / %s | per-round range |' % (ours, reference),
             '|---|' + '---:|' * len(names) + '---:|---|']
    for (mode, graph), per_model in results.items():
        med = {n: statistics.median(v) for n, v in per_model.items()}
        ratios = [a / b for a, b in zip(per_model[ours], per_model[reference])]
        lines.append('| %s %s | ' % (mode, graph) + ' | '.join('%.2f' % med[n] for n in names)
                     + ' | %.3f | %.3f-%.3f |' % (med[ours] / med[reference], min(ratios), max(ratios)))
    return '\n'.join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument('--image-size', type=int, default=224)
    parser.add_argument('--rounds', type=int, default=5, help='interleaved rounds (medians over them)')
    parser.add_argument('--iters', type=int, default=1, help='timed calls per model per round')
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--modes', nargs='+', choices=MODES, default=list(MODES))
    parser.add_argument('--graphs', nargs='+', choices=GRAPHS, default=list(GRAPHS))
    parser.add_argument('--quiet', action='store_true', help='print only the table')
    args = parser.parse_args(argv)
    if args.batch_size < 1 or args.image_size < 32:
        parser.error('--batch-size must be >= 1 and --image-size >= 32')
    log = None if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    results = benchmark(build_models(), args.batch_size, args.image_size, args.rounds, args.iters,
                        args.warmup, args.modes, args.graphs, log=log)
    print('batch %d at %dx%d, %d rounds x %d iters, MXNet %s, oneDNN %s, OMP threads %s'
          % (args.batch_size, args.image_size, args.image_size, args.rounds, args.iters, mx.__version__,
             'on' if mx.runtime.Features().is_enabled('MKLDNN') else 'off',
             os.environ.get('OMP_NUM_THREADS', 'default')))
    print(format_table(results))


if __name__ == '__main__':
    main()
