"""Weights trained on the bundled demo digits, for benchmarks that measure accuracy without ImageNet.

Trained once per model and width by the training library behind
``train_imagenet.py`` and kept in a folder, so later runs reuse them.
"""
import json
import os

from gluon_asymmnet.training import train, train_recipe

__all__ = ['demo_weights']


def demo_weights(model, folder, epochs=6, multiplier=1.0, batch_size=64, seed=0):
    """Weights of ``model`` trained on the demo digits, trained once and kept in ``folder``.

    Used where accuracy must be measured without ImageNet (the INT8 target
    of the benchmark). Training runs :func:`gluon_asymmnet.training.train`
    (the library behind ``train_imagenet.py``) with the ``'demo'`` recipe
    (:mod:`gluon_asymmnet.training.recipes`) for this model and width.

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
    result = train(train_recipe('demo', model=model, width_scale=multiplier, num_epochs=epochs,
                                warmup_epochs=min(1, epochs - 1), batch_size=batch_size, seed=seed, save_dir=run))
    info = {'params': result['best_params'], 'top1': result['best_top1'], 'model': model,
            'kwargs': {'multiplier': multiplier, 'classes': 10}}
    with open(record, 'w') as f:
        json.dump(info, f)
    return info
