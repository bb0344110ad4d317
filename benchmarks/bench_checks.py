"""What the hostile-input checks on the hot paths cost, beside the work they guard (issue 21).

Two checks run once per image or per call:

- the pixel limit (:func:`gluon_asymmnet.data.pixels.pixel_problem`: the
  image's header read before every decode) against decoding the image, for
  JPEG and PNG photos of ``--photo`` pixels;
- the input check of a network's call
  (:func:`gluon_asymmnet.asymmnet.check_input`: rank, channels and dtype)
  against the whole call of AsymmNet-L at batch 1, hybridized.

Each pair is timed in interleaved rounds (medians), so background load hits
both alike; the CPU is printed with the figures.

Example::

    python benchmarks/bench_checks.py --rounds 7
"""
import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if __name__ == '__main__':  # MXNet's OpenMP threads, before MXNet is imported (gluon_asymmnet.cpu)
    from gluon_asymmnet.cpu import configure_omp_threads
    configure_omp_threads(os.path.basename(__file__))

import cv2  # noqa: E402
import mxnet as mx  # noqa: E402
import numpy as np  # noqa: E402

import gluon_asymmnet as ga  # noqa: E402
from gluon_asymmnet.asymmnet import check_input  # noqa: E402
from gluon_asymmnet.cpu import cpu_description  # noqa: E402
from gluon_asymmnet.data.pixels import pixel_problem  # noqa: E402
from gluon_asymmnet.data.transforms import decode  # noqa: E402


def _per_call(fn, calls):
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls * 1e6


def _pairs(pairs, rounds):
    """Median microseconds per call of each (name, check, work, calls), in interleaved rounds."""
    times = {name: ([], []) for name, _, _, _ in pairs}
    for _ in range(rounds):
        for name, check, work, calls in pairs:
            times[name][0].append(_per_call(check, calls * 100))
            times[name][1].append(_per_call(work, calls))
    return {name: (statistics.median(c), statistics.median(w)) for name, (c, w) in times.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--photo', default='480x640', help='photo size HxW (default 480x640)')
    parser.add_argument('--model', default='asymmnet_large')
    parser.add_argument('--input-size', type=int, default=224)
    parser.add_argument('--rounds', type=int, default=7)
    args = parser.parse_args()
    height, width = (int(v) for v in args.photo.split('x'))
    rng = np.random.RandomState(0)
    # A smooth photo-like image (noise would make the PNG huge and its decode unrepresentative).
    base = cv2.resize(rng.randint(0, 256, (height // 16, width // 16, 3)).astype(np.uint8), (width, height))
    jpeg = cv2.imencode('.jpg', base)[1].tobytes()
    png = cv2.imencode('.png', base)[1].tobytes()
    net = ga.get_model(args.model)
    net.initialize()
    net.hybridize(static_alloc=True, static_shape=True)
    x = mx.nd.array(rng.uniform(-1, 1, (1, 3, args.input_size, args.input_size)))
    net(x).wait_to_read()
    pairs = [('pixel limit / JPEG decode', lambda: pixel_problem(jpeg), lambda: decode(jpeg), 10),
             ('pixel limit / PNG decode', lambda: pixel_problem(png), lambda: decode(png), 10),
             ('input check / %s call' % args.model, lambda: check_input(x, 'float32', 'AsymmNet'),
              lambda: net(x).wait_to_read(), 10)]
    results = _pairs(pairs, args.rounds)
    print('CPU: %s' % cpu_description())
    print('photo %dx%d, %s at %d px batch 1, %d interleaved rounds, medians' % (
        height, width, args.model, args.input_size, args.rounds))
    print('%-34s %12s %12s %9s' % ('check / work', 'check (us)', 'work (us)', 'share'))
    for name, (check, work) in results.items():
        print('%-34s %12.1f %12.1f %8.3f%%' % (name, check, work, 100 * check / work))


if __name__ == '__main__':
    main()
