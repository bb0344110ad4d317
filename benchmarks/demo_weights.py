"""Weights trained on the bundled demo digits, for benchmarks that measure accuracy without ImageNet.

Trained once per model and width by the training library behind
``train_imagenet.py`` and kept in a folder, so later runs reuse them.
"""
import json
import os

from gluon_asymmnet.training import parse_args, train

__all__ = ['demo_weights']


def demo_weights(model, folder, epochs=6, multiplier=1.0, batch_size=64, seed=0):
    """Weights of ``model`` trained on the demo digits, trained once and kept in ``folder``.

    Used where accuracy must be measured without ImageNet (the INT8 target
    of the benchmark). Training runs :func:`gluon_asymmnet.training.train`
    (the library behind ``train_imagenet.py``) with a cosine schedule.

    Returns
    -------
    dict
        ``params`` (path), ``top1`` (the training's best validation top-1),
        ``model``, ``kwargs``.
    """
    os.makedirs(folder, exist_ok=True)
    record = os.path.join(folder, '%s-x%g-digits.json' % (model, multiplier))
    if os.path.isfile(record):
        with open(record) as f:
            info = json.load(f)
        if os.path.isfile(info['params']):
            return info
    run = os.path.join(folder, '%s-x%g-digits' % (model, multiplier))
    args = ['--model', model, '--width-scale', str(multiplier), '--num-epochs', str(epochs),
            '--batch-size', str(batch_size), '--lr', '0.2', '--lr-mode', 'cosine', '--warmup-epochs',
            str(min(1, epochs - 1)), '--wd', '1e-4', '--no-wd', '-j', '0', '--log-interval', '0',
            '--save-frequency', '0', '--seed', str(seed), '--save-dir', run, '--logging-file', 'train.log']
    result = train(parse_args(args))
    info = {'params': result['best_params'], 'top1': result['best_top1'], 'model': model,
            'kwargs': {'multiplier': multiplier, 'classes': 10}}
    with open(record, 'w') as f:
        json.dump(info, f)
    return info
