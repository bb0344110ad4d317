#!/usr/bin/env python
"""Fine-tuning against training from scratch at the same budget, on the digits that ship with scikit-learn.

AsymmNet-S is pretrained on the digits 0-4 (all their training images), then
trained on the digits 5-9 with a few images per class: from scratch, and
fine-tuned from the pretrained weights (``--finetune-from``: a new classifier;
the backbone at 0.1 x the rate, the default, or at the full rate), with the same
flags, images and number of epochs (the budget); all are scored on every
held-out image of 5-9 (the demo's fixed split). Every run is
``train_imagenet.py`` on RecordIO files that this script packs, so the printed
commands are what a user types::

    python benchmarks/bench_finetune.py            # 5 and 10 images per class, 10 and 30 epochs, 3 seeds
    python benchmarks/bench_finetune.py --shots 10 --epochs 10 --seeds 0 --keep runs/finetune

Prints the commands, then held-out top-1 (mean and range over the seeds) per
number of images per class and budget.
"""
import argparse
import contextlib
import io
import os
import shlex
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from gluon_asymmnet.cpu import cpu_description  # noqa: E402
from gluon_asymmnet.data.digits import digit_images, digits_split  # noqa: E402
from gluon_asymmnet.data.pack import pack_arrays  # noqa: E402
from gluon_asymmnet.training import parse_args, train  # noqa: E402

SOURCE, TARGET = (0, 1, 2, 3, 4), (5, 6, 7, 8, 9)


def describe_cpu():
    """The CPU (:func:`gluon_asymmnet.cpu.cpu_description`) and the OpenMP threads."""
    return '%s, OMP_NUM_THREADS %s' % (cpu_description(), os.environ.get('OMP_NUM_THREADS'))


def pack_task(images, labels, classes, prefix, positions):
    """Pack the images of ``classes`` among ``positions``, labelled 0..len(classes)-1 (names: the digits)."""
    keep = [p for p in positions if labels[p] in classes]
    remap = {c: i for i, c in enumerate(classes)}
    out = pack_arrays(images[keep], [remap[labels[p]] for p in keep], prefix, classes=[str(c) for c in classes])
    return out['rec'], out['idx'], len(keep)


def few_shots(labels, classes, positions, shots, seed):
    """``shots`` training positions per class, drawn with ``seed``."""
    rng = np.random.RandomState(seed)
    chosen = []
    for c in classes:
        members = [p for p in positions if labels[p] == c]
        chosen.extend(rng.choice(members, shots, replace=False))
    return sorted(chosen)


def data_flags(train, val):
    return ['--rec-train', train[0], '--rec-train-idx', train[1], '--rec-val', val[0], '--rec-val-idx', val[1]]


def run(argv, quiet=True):
    """``train_imagenet.py argv`` through the library; returns train()'s result."""
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink) if quiet else contextlib.nullcontext():
        return train(parse_args(argv))


def show(argv):
    return 'python train_imagenet.py ' + ' '.join(shlex.quote(a) for a in argv)


METHODS = (('scratch', []), ('finetuned', ['--finetune-from']), ('finetuned_all', ['--finetune-from',
                                                                                 '--backbone-lr-mult', '1']))


def measure(work, shots=(5, 10), seeds=(0, 1, 2), budgets=(10, 30), model=('asymmnet_small', '0.5'),
            pretrain_epochs=10, batch_size=16, input_size=32, say=print):
    """Pretrain once; then, per images-per-class, budget (epochs) and seed, train from scratch and fine-tune.

    Returns
    -------
    dict
        ``rows`` (one per shots x budget: mean/min/max held-out top-1 of each
        method over the seeds), ``pretrain_top1``, ``val_images``, ``commands``.
    """
    images, labels = digit_images()
    train_pos, val_pos = digits_split(labels)
    common = ['--model', model[0], '--width-scale', model[1], '--input-size', str(input_size), '-j', '0',
              '--log-interval', '0', '--save-frequency', '0', '--lr-mode', 'cosine', '--wd', '1e-4', '--no-wd',
              '--min-random-area', '0.5', '--no-mirror']
    src_train = pack_task(images, labels, SOURCE, os.path.join(work, 'source_train'), train_pos)
    src_val = pack_task(images, labels, SOURCE, os.path.join(work, 'source_val'), val_pos)
    tgt_val = pack_task(images, labels, TARGET, os.path.join(work, 'target_val'), val_pos)
    pre_argv = data_flags(src_train, src_val) + common + [
        '--batch-size', '64', '--num-epochs', str(pretrain_epochs), '--lr', '0.2', '--warmup-epochs', '1',
        '--save-dir', os.path.join(work, 'pretrain')]
    commands = [show(pre_argv)]
    say('pretraining on the digits %s (%d training images):\n  %s' % (
        ','.join(map(str, SOURCE)), src_train[2], commands[0]))
    tic = time.time()
    pre = run(pre_argv)
    say('  held-out top-1 on %s: %.4f (%d epochs, %.0f s)' % (','.join(map(str, SOURCE)), pre['history'][-1]['top1'],
                                                             pretrain_epochs, time.time() - tic))
    rows = []
    for k in shots:
        for epochs in budgets:
            scores = {name: [] for name, _ in METHODS}
            for seed in seeds:
                picked = few_shots(labels, TARGET, train_pos, k, seed)
                tgt_train = pack_task(images, labels, TARGET, os.path.join(work, 'target_%d_%d' % (k, seed)), picked)
                base = data_flags(tgt_train, tgt_val) + common + [
                    '--batch-size', str(min(batch_size, tgt_train[2])), '--num-epochs', str(epochs), '--lr', '0.1',
                    '--seed', str(seed)]
                for name, extra in METHODS:
                    if extra:
                        extra = extra[:1] + [pre['best_params']] + extra[1:]
                    argv = base + extra + ['--save-dir', os.path.join(work, '%s_%d_%d_%d' % (name, k, epochs, seed))]
                    if len(commands) < 1 + len(METHODS):
                        commands.append(show(argv))
                        say('%s on %d images per class of %s:\n  %s' % (name, k, ','.join(map(str, TARGET)),
                                                                         commands[-1]))
                    scores[name].append(run(argv)['history'][-1]['top1'])
            rows.append(dict(shots=k, epochs=epochs, updates=-(-epochs * 5 * k // min(batch_size, 5 * k)),
                             **{name: (float(np.mean(v)), min(v), max(v)) for name, v in scores.items()}))
    return dict(rows=rows, pretrain_top1=pre['history'][-1]['top1'], val_images=tgt_val[2], commands=commands)


def format_rows(result):
    lines = ['| images per class | epochs (updates) | from scratch | fine-tuned (backbone 0.1x, default) | '
             'fine-tuned (backbone 1x) |', '|---:|---:|---:|---:|---:|']
    for r in result['rows']:
        cells = ['%.1f %% (%.1f-%.1f)' % tuple(100 * v for v in r[name]) for name, _ in METHODS]
        lines.append('| %d | %d (%d) | %s |' % (r['shots'], r['epochs'], r['updates'], ' | '.join(cells)))
    return '\n'.join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--shots', default='5,10', help='images per class of the digits 5-9 (comma-separated)')
    p.add_argument('--seeds', default='0,1,2', help='seeds of the image draw and the training (comma-separated)')
    p.add_argument('--epochs', default='10,30', help='budgets: epochs of each run on the few images (comma-separated)')
    p.add_argument('--pretrain-epochs', type=int, default=10)
    p.add_argument('--keep', default=None, help='keep the runs in this folder (default: a temporary one)')
    args = p.parse_args(argv)
    shots = tuple(int(s) for s in args.shots.split(','))
    seeds = tuple(int(s) for s in args.seeds.split(','))
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or tmp
        os.makedirs(work, exist_ok=True)
        tic = time.time()
        budgets = tuple(int(e) for e in args.epochs.split(','))
        result = measure(work, shots, seeds, budgets, pretrain_epochs=args.pretrain_epochs)
    print()
    print('AsymmNet-S x0.5 at 32x32, pretrained on the digits 0-4 (held-out top-1 %.4f); runs on the digits 5-9 with '
          'the same flags (batch 16, cosine from 0.1, the same images and epochs; fine-tuned: new classifier); '
          'held-out top-1 at the last epoch on all %d held-out images of 5-9, mean (range) over seeds %s; %s; '
          '%.0f s in all' % (result['pretrain_top1'], result['val_images'], args.seeds, describe_cpu(),
                             time.time() - tic))
    print(format_rows(result))
    return 0


if __name__ == '__main__':
    sys.exit(main())
