"""Training and inference throughput of AsymmNet-L against GluonCV's MobileNetV3-L on CPU.

Both networks (and our own ``mobilenetv3_large``, for transparency) are built
in one process and measured in interleaved rounds: every round times each
model once per setting, so background load on a shared machine hits all of
them alike. The table reports median images per second over the rounds and
the ratio of medians AsymmNet-L / GluonCV MobileNetV3-L, with the range of
the per-round ratios.

The models are :class:`gluon_asymmnet.backend.TrainInferHybridBlock`\ s:
hybridized, each keeps a training graph and an inference graph, with the
kernels that are fast and correct for its mode (see
``gluon_asymmnet/backend/``). ``asymmnet_large +one-graph`` is the same
network run as a plain HybridBlock, one cached graph for both modes (what
``AsymmNet`` was before it kept one per mode), to show what that costs.

Settings: ``train`` is one SGD step (forward, backward, momentum update) with
softmax cross-entropy; ``infer`` is one forward pass outside autograd.
``static`` is ``hybridize(static_alloc=True, static_shape=True)``,
``imperative`` is no hybridization. oneDNN stays at MXNet's default (on).

``--profile MODE GRAPH`` instead prints, per operator, the milliseconds
per call (median over the rounds) from MXNet's profiler, with bulk execution
off so that every operator is timed on its own.

Example::

    python benchmarks/bench_train_infer.py --batch-size 32 --rounds 5
    python benchmarks/bench_train_infer.py --batch-size 8 --rounds 3 --profile train static
"""
import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if __name__ == '__main__':  # MXNet's OpenMP threads, before MXNet is imported (gluon_asymmnet.cpu)
    from gluon_asymmnet.cpu import configure_omp_threads
    configure_omp_threads(os.path.basename(__file__))

import gluon_asymmnet as ga  # noqa: E402
import mxnet as mx  # noqa: E402
from mxnet import autograd, gluon  # noqa: E402
from mxnet.gluon.block import HybridBlock  # noqa: E402
from gluon_asymmnet.inference.timing import operator_times, time_interleaved  # noqa: E402

MODES = ('train', 'infer')
GRAPHS = ('static', 'imperative')
REFERENCE = 'gluoncv mobilenetv3_large'
ONE_GRAPH = ' +one-graph'
DEFAULT_MODELS = ('asymmnet_large', 'asymmnet_large' + ONE_GRAPH, 'mobilenetv3_large', REFERENCE)


def build_models(names=DEFAULT_MODELS, classes=1000, seed=0):
    """Initialised networks by display name.

    ``'<name>'`` is ``gluon_asymmnet.get_model(name)``, ``'<name> +one-graph'`` the
    same network with HybridBlock's single cached graph instead of one per
    mode, and ``'gluoncv <name>'`` GluonCV's model zoo entry.
    """
    models = {}
    for name in names:
        mx.random.seed(seed)
        if name.startswith('gluoncv '):
            from gluoncv.model_zoo import get_model as gcv_get_model
            net = gcv_get_model(name.split(' ', 1)[1], classes=classes)
        elif name.endswith(ONE_GRAPH):
            net = ga.get_model(name[:-len(ONE_GRAPH)], classes=classes)
            net.__class__ = type('OneGraph' + type(net).__name__, (type(net),),
                                 {'_call_cached_op': HybridBlock._call_cached_op})
        else:
            net = ga.get_model(name, classes=classes)
        net.initialize(mx.init.MSRAPrelu())
        models[name] = net
    return models


class Runner:
    """One network in one graph mode, ready to run a training step or an inference pass.

    Hybridizing (or un-hybridizing) drops the network's cached graphs, so each
    Runner starts from fresh graphs and holds only the static memory it uses.
    """

    def __init__(self, net, graph, batch_size, image_size):
        if graph not in GRAPHS:
            raise ValueError('graph must be one of %s, got %r' % (', '.join(GRAPHS), graph))
        net.hybridize(graph == 'static', static_alloc=True, static_shape=True)
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

    def timed(self, mode, iters):
        """``run()`` for :func:`time_interleaved`: ``iters`` calls of ``mode``, then all pending work."""
        step = getattr(self, mode)

        def run():
            for _ in range(iters):
                step()
            mx.nd.waitall()
        return run


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
        for mode in modes:
            runners = {n: Runner(models[n], graph, batch_size, image_size) for n in names}
            for name in names:
                for _ in range(warmup):
                    getattr(runners[name], mode)()
            mx.nd.waitall()

            def report(times, mode=mode, graph=graph):
                log('%s %s round %d/%d: %s' % (mode, graph, len(times[names[0]]), rounds, ', '.join(
                    '%s %.1f' % (n, iters * batch_size / times[n][-1]) for n in names)))
            seconds = time_interleaved({n: runners[n].timed(mode, iters) for n in names}, rounds, warmup=0,
                                       rotate=True, progress=report if log else None)
            results[(mode, graph)] = {n: [iters * batch_size / t for t in seconds[n]] for n in names}
            del runners
    return results


def format_table(results, reference=REFERENCE):
    """Markdown table: median img/s per model and, for every other model, the ratio of medians
    model / reference with the range of the per-round ratios in brackets."""
    names = list(next(iter(results.values())))
    others = [n for n in names if n != reference]
    lines = ['| setting | ' + ' | '.join('%s img/s' % n for n in names) + ' | '
             + ' | '.join('%s / %s' % (n, reference) for n in others) + ' |',
             '|---|' + '---:|' * (len(names) + len(others))]
    for (mode, graph), per_model in results.items():
        med = {n: statistics.median(v) for n, v in per_model.items()}
        cells = []
        for n in others:
            ratios = [a / b for a, b in zip(per_model[n], per_model[reference])]
            cells.append('%.3f (%.2f-%.2f)' % (med[n] / med[reference], min(ratios), max(ratios)))
        lines.append('| %s %s | ' % (mode, graph) + ' | '.join('%.2f' % med[n] for n in names)
                     + ' | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def profile_ops(models, mode='train', graph='static', batch_size=8, image_size=224, rounds=3):
    """Milliseconds per call of ``mode`` spent in each operator, median over interleaved rounds.

    Per round :func:`gluon_asymmnet.inference.timing.operator_times`. Set ``MXNET_EXEC_BULK_EXEC_TRAIN=0`` and
    ``MXNET_EXEC_BULK_EXEC_INFERENCE=0`` before MXNet starts, otherwise static graphs run
    operators in bulk segments that the profiler times as one.

    Returns
    -------
    dict
        ``{name: {operator: (ms, calls)}}``.
    """
    names = list(models)
    runners = {n: Runner(models[n], graph, batch_size, image_size) for n in names}
    for name in names:
        getattr(runners[name], mode)()
    mx.nd.waitall()
    per_round = {n: [] for n in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            per_round[name].append(operator_times(getattr(runners[name], mode)))
    ops = sorted({op for stats_list in per_round.values() for stats in stats_list for op in stats})
    return {n: {op: (statistics.median(s.get(op, (0.0, 0))[0] for s in per_round[n]),
                     max(s.get(op, (0.0, 0))[1] for s in per_round[n])) for op in ops} for n in names}


def format_profile(prof, ours='asymmnet_large', reference=REFERENCE, top=20):
    """Per-operator table, sorted by how much more time ``ours`` spends than ``reference``."""
    names = list(prof)
    ops = sorted(prof[ours], key=lambda op: prof[reference][op][0] - prof[ours][op][0])[:top]
    lines = ['| operator | ' + ' | '.join('%s ms (calls)' % n for n in names)
             + ' | %s - %s ms |' % (ours, reference), '|---|' + '---:|' * (len(names) + 1)]
    for op in ops:
        lines.append('| %s | ' % op + ' | '.join('%.1f (%d)' % prof[n][op] for n in names)
                     + ' | %+.1f |' % (prof[ours][op][0] - prof[reference][op][0]))
    totals = {n: sum(v[0] for v in prof[n].values()) for n in names}
    lines.append('| total | ' + ' | '.join('%.1f' % totals[n] for n in names)
                 + ' | %+.1f |' % (totals[ours] - totals[reference]))
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
    parser.add_argument('--models', nargs='+', default=list(DEFAULT_MODELS),
                        help="display names: gluon_asymmnet names, '<name>%s', 'gluoncv <name>'; "
                             "the last is the reference of the ratios" % ONE_GRAPH)
    parser.add_argument('--profile', nargs=2, metavar=('MODE', 'GRAPH'),
                        help='print per-operator milliseconds instead of throughput')
    parser.add_argument('--quiet', action='store_true', help='print only the table')
    args = parser.parse_args(argv)
    if args.batch_size < 1 or args.image_size < 32:
        parser.error('--batch-size must be >= 1 and --image-size >= 32')
    if args.profile and (args.profile[0] not in MODES or args.profile[1] not in GRAPHS):
        parser.error('--profile takes a mode (%s) and a graph (%s)' % ('/'.join(MODES), '/'.join(GRAPHS)))
    models = build_models(args.models)
    print('batch %d at %dx%d, %d rounds x %d iters, MXNet %s, oneDNN %s, OMP threads %s'
          % (args.batch_size, args.image_size, args.image_size, args.rounds, args.iters, mx.__version__,
             'on' if mx.runtime.Features().is_enabled('MKLDNN') else 'off',
             os.environ.get('OMP_NUM_THREADS', 'default')))
    if args.profile:
        if os.environ.get('MXNET_EXEC_BULK_EXEC_TRAIN') != '0':
            print('note: set MXNET_EXEC_BULK_EXEC_TRAIN=0 MXNET_EXEC_BULK_EXEC_INFERENCE=0 to time '
                  'operators of static graphs one by one', file=sys.stderr)
        prof = profile_ops(models, args.profile[0], args.profile[1], args.batch_size, args.image_size,
                           args.rounds)
        for ours in args.models[:-1]:
            print('\n%s, %s %s, ms per call:' % (ours, *args.profile))
            print(format_profile(prof, ours, args.models[-1]))
        return
    log = None if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    results = benchmark(models, args.batch_size, args.image_size, args.rounds, args.iters,
                        args.warmup, args.modes, args.graphs, log=log)
    print(format_table(results, reference=args.models[-1]))


if __name__ == '__main__':
    main()
