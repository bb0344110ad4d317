"""``make demo``: the model table, then a real training run on CPU, evaluation, export and plot.

1. The four models at width 1.0 (default asymmrate): MACs and parameters at 224x224.
2. AsymmNet-S x0.5 trains on the bundled handwritten digits (1,438 training
   and 359 held-out images packed as RecordIO, see
   :func:`gluon_asymmnet.data.demo_dataset`) with the training library that
   ``train_imagenet.py`` runs (recipe ``'demo'`` of
   :mod:`gluon_asymmnet.training.recipes`), printing the released log's lines.
3. The best checkpoint is loaded into a fresh network and evaluated with
   :func:`gluon_asymmnet.metrics.evaluate_accuracy` (the function the
   training's validation used, so the figures agree), exported as MXNet symbol
   and ONNX, and the validation curve is written as a PNG.
4. A few held-out digits are written as PNG files, with the ``eval.py
   --predict`` command that names what the checkpoint sees in them.

Run ``python -m gluon_asymmnet.demo --help`` for the options.
"""
import argparse
import os
import time

if __name__ == '__main__':  # a command line: MXNet's threads are set before it is imported
    from .cpu import configure_omp_threads
    configure_omp_threads('gluon_asymmnet.demo')

from . import get_model, get_model_list, load_checkpoint, profile
from .metrics import evaluate_accuracy
from .model_zoo import get_model_spec
from .training import build_data, recipe_argv, train, train_recipe

__all__ = ['model_table', 'held_out_photos', 'run_demo', 'main']

# Each demo run gets its own timestamped folder under here.
DEMO_OUT = os.path.join('runs', 'demo')
DEMO_EPOCHS = 15


def model_table():
    """Every model at width 1.0 and 224x224: MACs, exact and paper-convention parameters."""
    rows = ['%-18s %5s %4s %14s %12s %14s' % ('model', 'width', 'r', 'MACs', 'params', 'params(paper)')]
    for name in get_model_list():
        config = get_model_spec(name).defaults()
        p = profile(get_model(name))
        rows.append('%-18s %5.2f %4d %14d %12d %14d' % (
            name, config.get('multiplier', 1.0), config.get('asymmrate', 0), p['macs'], p['params'],
            p['params_paper']))
    return '\n'.join(rows)


def held_out_photos(folder, count=8):
    """The first ``count`` held-out digits as PNG files (named ``<n>-true-<class>.png``) in ``folder``."""
    import cv2
    from .data import RecordSource, demo_dataset
    from .data.transforms import decode
    demo = demo_dataset()
    source = RecordSource(demo['rec_val'], demo['rec_val_idx'])
    os.makedirs(folder, exist_ok=True)
    for pos in range(count):
        label, _, payload = source.read(pos)
        name = '%d-true-%s.png' % (pos, demo['classes'][int(label)])
        cv2.imwrite(os.path.join(folder, name), cv2.cvtColor(decode(payload), cv2.COLOR_RGB2BGR))
    return folder


def run_demo(out_dir=DEMO_OUT, epochs=DEMO_EPOCHS, num_workers=0, formats=('symbol', 'onnx')):
    """Train on the digits, then evaluate, export and plot; print every step.

    Returns
    -------
    dict
        ``result`` (from :func:`gluon_asymmnet.training.train`), ``eval``
        (:func:`~gluon_asymmnet.metrics.evaluate_accuracy` of the best
        checkpoint), ``export`` (paths), ``seconds`` (training time).
    """
    overrides = dict(num_epochs=epochs, num_workers=num_workers, save_dir=out_dir)
    cfg = train_recipe('demo', **overrides)
    print('\nTraining %s x%g on the bundled handwritten digits (CPU, %d epochs):'
          % (cfg.model, cfg.width_scale, cfg.num_epochs))
    print('python train_imagenet.py ' + ' '.join(recipe_argv('demo', **overrides)))
    tic = time.time()
    result = train(cfg)
    seconds = time.time() - tic

    net = get_model(cfg.model, **cfg.model_kwargs)
    load_checkpoint(net, result['best_params'])
    net.hybridize(static_alloc=True, static_shape=True)
    val_batches = build_data(cfg, train=False)[1]
    try:
        ev = evaluate_accuracy(net, val_batches)
    finally:
        val_batches.close()
    logged = next(h for h in result['history'] if h['epoch'] == result['best_epoch'])
    print('\nBest checkpoint %s (epoch %d) evaluated again with evaluate_accuracy: top1=%f top5=%f on %d '
          'held-out images (training logged top1=%f top5=%f)'
          % (result['best_params'], result['best_epoch'], ev['top1'], ev['top5'], ev['num_samples'],
             logged['top1'], logged['top5']))

    from .export import export
    prefix = os.path.join(out_dir, 'export', '%s-digits' % cfg.model)
    paths = export(net, prefix, input_size=cfg.input_size, formats=formats)
    print('\nTrained in %.1f s. Written under %s:' % (seconds, os.path.abspath(out_dir)))
    print('  best checkpoint   %s' % result['best_params'])
    for kind in sorted(paths):
        print('  export (%-6s)   %s' % (kind, paths[kind]))
    print('  curve plot        %s' % result['plot'])
    print('  training log      %s' % result['log_file'])
    print('  TensorBoard       %s (tensorboard --logdir %s)' % (out_dir, out_dir))
    photos = held_out_photos(os.path.join(out_dir, 'photos'))
    print('  held-out digits   %s; what the checkpoint sees in them (any pictures, any checkpoint):\n'
          '    python eval.py --params %s --predict %s' % (photos, result['best_params'], photos))
    return dict(result=result, eval=ev, export=paths, seconds=seconds, photos=photos)


def main(argv=None):
    p = argparse.ArgumentParser(description='gluon_asymmnet demo: model table, then train/evaluate/export on digits')
    p.add_argument('--epochs', type=int, default=DEMO_EPOCHS, help='training epochs (default %d)' % DEMO_EPOCHS)
    p.add_argument('-j', '--num-data-workers', dest='num_workers', type=int, default=0,
                   help='data worker processes (default 0)')
    p.add_argument('--out', default=None,
                   help='output folder (default %s/<date-time>)' % DEMO_OUT)
    args = p.parse_args(argv)
    out = args.out or os.path.join(DEMO_OUT, time.strftime('%Y%m%d-%H%M%S'))
    print(model_table())
    run = run_demo(out, args.epochs, args.num_workers)
    top1 = run['eval']['top1']
    print('\nHeld-out top-1 %.4f after %d epochs (%.0f s of training): %s'
          % (top1, args.epochs, run['seconds'], 'the demo target 0.95 is met' if top1 >= 0.95
             else 'BELOW the demo target 0.95'))


if __name__ == '__main__':
    main()
