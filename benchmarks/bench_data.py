"""Images per second of the project's data pipeline against MXNet's C++ ImageRecordIter.

A RecordIO file of generated ImageNet-like JPEGs (500x375 and 375x500,
textured so that they compress to ImageNet-like sizes) is packed with the
project's packer, then read in interleaved rounds by

* ``ours``: :func:`gluon_asymmnet.data.get_data_loaders` (worker processes,
  per-sample seeded augmentation), and
* ``ImageRecordIter``: MXNet's C++ iterator with the same augmentation
  (random resized crop area 0.08-1, aspect 3/4-4/3, mirror, brightness/
  contrast/saturation 0.4, PCA lighting 0.1, mean/std) and as many decoding
  threads as we have workers.

Each round runs one full pass of every pipeline, so background load on a
shared machine hits both alike; the table gives median images per second over
the rounds and the ratio of medians ours / ImageRecordIter, with the range of
the per-round ratios.

Example::

    python benchmarks/bench_data.py --images 320 --workers 2 --rounds 3
"""
import argparse
import atexit
import os
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if __name__ == '__main__':  # MXNet's OpenMP threads, before MXNet is imported (gluon_asymmnet.cpu)
    from gluon_asymmnet.cpu import configure_omp_threads
    configure_omp_threads(os.path.basename(__file__))

import cv2  # noqa: E402
import mxnet as mx  # noqa: E402
import numpy as np  # noqa: E402
from gluon_asymmnet.data import get_data_loaders  # noqa: E402
from gluon_asymmnet.preprocessing import IMAGENET  # noqa: E402
from gluon_asymmnet.inference.timing import time_interleaved  # noqa: E402
from gluon_asymmnet.pack import pack_arrays  # noqa: E402


def make_images(n, seed=0):
    """Smooth shapes plus sensor-like noise: JPEG sizes near ImageNet's (~100 kB at quality 95)."""
    rs = np.random.RandomState(seed)
    images = []
    for i in range(n):
        h, w = (375, 500) if i % 2 == 0 else (500, 375)
        base = cv2.resize(rs.randint(0, 256, size=(6, 8, 3)).astype(np.float32), (w, h),
                          interpolation=cv2.INTER_CUBIC)
        img = base + rs.normal(0, 12, size=(h, w, 3))
        images.append(np.clip(img, 0, 255).astype(np.uint8))
    return images


def record_iter(rec, idx, batch_size, size, threads, train):
    common = dict(path_imgrec=rec, path_imgidx=idx, data_shape=(3, size, size), batch_size=batch_size,
                  preprocess_threads=threads, mean_r=IMAGENET.mean[0], mean_g=IMAGENET.mean[1],
                  mean_b=IMAGENET.mean[2], std_r=IMAGENET.std[0], std_g=IMAGENET.std[1], std_b=IMAGENET.std[2])
    if train:
        return mx.io.ImageRecordIter(shuffle=True, random_resized_crop=True,
                                     min_random_area=0.08, max_random_area=1.0, min_aspect_ratio=3. / 4.,
                                     max_aspect_ratio=4. / 3., rand_mirror=True, brightness=0.4,
                                     contrast=0.4, saturation=0.4, pca_noise=0.1, **common)
    return mx.io.ImageRecordIter(shuffle=False, resize=int(np.ceil(size / IMAGENET.crop_ratio)), **common)


def pass_ours(batches):
    """One pass of our pipeline; the number of images."""
    count = 0
    for data, _ in batches:
        data.wait_to_read()
        count += data.shape[0]
    return count


def pass_record_iter(it):
    """One pass of ImageRecordIter; the number of images."""
    it.reset()
    count = 0
    for batch in it:
        batch.data[0].wait_to_read()
        count += batch.data[0].shape[0] - batch.pad
    return count


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--images', type=int, default=320)
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument('--input-size', type=int, default=224)
    parser.add_argument('--workers', type=int, default=2, help='our worker processes = C++ decoding threads')
    parser.add_argument('--rounds', type=int, default=3)
    args = parser.parse_args(argv)

    tmp = tempfile.mkdtemp(prefix='bench_data_')
    atexit.register(shutil.rmtree, tmp, True)  # the packed images
    t0 = time.perf_counter()
    info = pack_arrays(make_images(args.images), np.arange(args.images) % 10, os.path.join(tmp, 'bench'))
    size_mb = os.path.getsize(info['rec']) / 1e6
    print('packed %d JPEGs (%.0f kB each) in %.1f s; batch %d at %d, %d workers/threads, %d rounds, %d CPUs'
          % (args.images, 1e3 * size_mb / args.images, time.perf_counter() - t0, args.batch_size,
             args.input_size, args.workers, args.rounds, os.cpu_count()))

    train, val = get_data_loaders(info['rec'], info['idx'], info['rec'], info['idx'], batch_size=args.batch_size,
                                  num_workers=args.workers, input_size=args.input_size)
    pipelines = {
        ('train', 'ours'): lambda: pass_ours(train),
        ('train', 'ImageRecordIter'): (lambda it: lambda: pass_record_iter(it))(
            record_iter(info['rec'], info['idx'], args.batch_size, args.input_size, args.workers, True)),
        ('val', 'ours'): lambda: pass_ours(val),
        ('val', 'ImageRecordIter'): (lambda it: lambda: pass_record_iter(it))(
            record_iter(info['rec'], info['idx'], args.batch_size, args.input_size, args.workers, False)),
    }
    images = {}
    # One warm-up pass each: worker start, first file reads.
    seconds = time_interleaved({key: (lambda key=key, run=run: images.__setitem__(key, run()))
                                for key, run in pipelines.items()}, args.rounds)
    rates = {key: [images[key] / s for s in times] for key, times in seconds.items()}
    train.close()
    val.close()

    print('%-6s %-16s %12s %s' % ('pass', 'pipeline', 'images/s', 'per round'))
    for key, values in rates.items():
        print('%-6s %-16s %12.1f %s' % (key + (statistics.median(values), ' '.join('%.1f' % v for v in values))))
    for mode in ('train', 'val'):
        ours, theirs = rates[(mode, 'ours')], rates[(mode, 'ImageRecordIter')]
        per_round = [a / b for a, b in zip(ours, theirs)]
        print('%s: ours / ImageRecordIter = %.2fx (per round %.2f-%.2f)'
              % (mode, statistics.median(ours) / statistics.median(theirs), min(per_round), max(per_round)))


if __name__ == '__main__':
    main()
