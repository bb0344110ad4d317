"""What the weight-layout guard costs an inference call (gluon_asymmnet/backend/weight_layout.py).

One AsymmNet-L is called with its :class:`~gluon_asymmnet.backend.weight_layout.WeightLayoutGuard`
and with the guard replaced by a no-op, in interleaved rounds (each round
times both, so background load hits both alike). Two ways of calling:
``awaited`` waits for each output (``net(x).wait_to_read()``), ``pipelined``
pushes ``--calls`` forward passes and waits once at the end, where the
guard's check runs while the engine is busy. The guard waits only when a call
can start a weight reorder, which the warm-up call before timing does; what is
left is its check of the parameter arrays on every call, also timed alone.

Example::

    python benchmarks/bench_weight_layout.py --batch-size 1 --rounds 7
"""
import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import gluon_asymmnet as ga  # noqa: E402

import mxnet as mx  # noqa: E402


class _NoGuard:
    def after_call(self, block, inputs):
        pass

    def reset(self):
        pass


def _time(net, x, calls, pipelined):
    start = time.perf_counter()
    if pipelined:
        outs = [net(x) for _ in range(calls)]
        mx.nd.waitall()
        del outs
    else:
        for _ in range(calls):
            net(x).wait_to_read()
    return (time.perf_counter() - start) / calls * 1e3


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--model', default='asymmnet_large')
    parser.add_argument('--batch-size', type=int, default=1)
    parser.add_argument('--rounds', type=int, default=7)
    parser.add_argument('--calls', type=int, default=20)
    parser.add_argument('--imperative', action='store_true', help='do not hybridize')
    args = parser.parse_args()
    net = ga.get_model(args.model)
    net.initialize()
    if not args.imperative:
        net.hybridize(static_alloc=True, static_shape=True)
    guard = net._weight_guard
    x = mx.nd.random.uniform(shape=(args.batch_size, 3, 224, 224))
    net(x).wait_to_read()
    times = {(g, p): [] for g in ('guard', 'no guard') for p in ('awaited', 'pipelined')}
    for r in range(args.rounds):
        for pipelined in (False, True):
            # Alternate which goes first, so neither always follows the other's leftovers.
            for name in ('guard', 'no guard')[::1 if r % 2 else -1]:
                net._weight_guard = guard if name == 'guard' else _NoGuard()
                times[(name, 'pipelined' if pipelined else 'awaited')].append(
                    _time(net, x, args.calls, pipelined))
    net._weight_guard = guard
    start, checks = time.perf_counter(), 2000
    for _ in range(checks):
        guard.after_call(net, (x,))
    check_us = (time.perf_counter() - start) / checks * 1e6
    print('%s batch %d, %s, OMP_NUM_THREADS=%s, %d rounds of %d calls (median ms per call):'
          % (args.model, args.batch_size, 'imperative' if args.imperative else 'hybridized static',
             os.environ.get('OMP_NUM_THREADS'), args.rounds, args.calls))
    for calling in ('awaited', 'pipelined'):
        with_guard, without = times[('guard', calling)], times[('no guard', calling)]
        ratios = [a / b for a, b in zip(with_guard, without)]
        print('  %-9s guard %7.2f  no guard %7.2f  ratio %.3f (rounds %.3f-%.3f)'
              % (calling, statistics.median(with_guard), statistics.median(without),
                 statistics.median(ratios), min(ratios), max(ratios)))
    print('  the guard\'s check alone: %.1f us per call' % check_us)


if __name__ == '__main__':
    main()
