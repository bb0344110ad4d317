"""What ``eval.py`` does, as functions: load a model, build evaluation data, evaluate, summarise.

- :func:`load_model`: a model by name with a parameter file of any layout
  (:func:`gluon_asymmnet.load_checkpoint`), with the store's weights
  (``pretrained``), or an exported symbol JSON + params (``model_prefix``).
  A checkpoint of ``train_imagenet.py`` needs no model flags: its ``.json``
  names the model, the classes and the preprocessing
  (:func:`gluon_asymmnet.run_meta.read_run_info`, :func:`run_defaults`).
- :func:`eval_batches`: validation batches with GluonCV's preprocessing
  (resize the short side to ``ceil(input_size / crop_ratio)``, centre crop)
  from ImageNet RecordIO, an ImageNet folder, any folder of class
  subfolders, or the bundled demo digits.
- :func:`evaluate`: top-1/top-5 through
  :func:`gluon_asymmnet.evaluate.evaluate_accuracy`, the function the
  training's validation runs, so a checkpoint evaluates to the figures
  printed when it was saved.
- :func:`summary_rows` / :func:`format_summary`: MACs and parameters of one
  configuration or of the whole ``counts.csv`` grid, beside the published
  figures (``published.json``, and the store's ``pretrained.json``).
"""
import glob
import json
import os
import re

import mxnet as mx
import numpy as np

from .checkpoint import CheckpointError, load_checkpoint
from .data import DataError, demo_dataset, folder_batches, get_data_loaders
from .evaluate import evaluate_accuracy
from .inference import BackendError
from .model_store import DEFAULT_ROOT, ModelStoreError, pretrained_entries
from .model_zoo import get_model, get_model_list
from .profiler import format_table, profile
from .run_meta import read_run_info

__all__ = ['EvalError', 'SUMMARY_WIDTHS', 'SUMMARY_RATES', 'published_figures', 'model_kwargs', 'load_model',
           'eval_batches', 'calibration_images', 'evaluate', 'summary_rows', 'format_summary', 'layer_table']

# The grid of counts.csv (DESIGN.md section 3).
SUMMARY_WIDTHS = (1.0, 0.75, 0.5, 0.35)
SUMMARY_RATES = (0, 1, 2)
_PUBLISHED = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'published.json')


class EvalError(ValueError):
    """Evaluation inputs that cannot work together; the message names the option or file."""


def published_figures():
    """The paper's figures (``published.json``) and the store's checkpoint figures.

    Returns
    -------
    dict
        ``paper``: ``{(model, multiplier, asymmrate): {top1, params_paper, madds}}``;
        ``checkpoints``: ``{(model, multiplier, asymmrate): [(entry name, top1, top5), ...]}``
        (``asymmrate`` 0 for MobileNetV3 entries).
    """
    with open(_PUBLISHED) as f:
        data = json.load(f)
    paper = {(r['model'], float(r['multiplier']), int(r['asymmrate'])): r for r in data['paper']}
    checkpoints = {}
    for e in pretrained_entries():
        key = (e.model, float(e.kwargs.get('multiplier', 1.0)), int(e.kwargs.get('asymmrate', 0)))
        checkpoints.setdefault(key, []).append((e.name, e.top1, e.top5))
    return {'paper': paper, 'checkpoints': checkpoints}


def model_kwargs(model, multiplier=1.0, asymmrate=None, shuffle_groups=None, classes=None):
    """Constructor arguments for ``model``, refusing those it does not take.

    Raises
    ------
    EvalError
        Unknown model, or AsymmNet-only arguments for a MobileNetV3 model.
    """
    if model not in get_model_list():
        raise EvalError('unknown model %r; choose from %s' % (model, ', '.join(get_model_list())))
    kwargs = {'multiplier': float(multiplier)}
    for name, value in (('asymmrate', asymmrate), ('shuffle_groups', shuffle_groups)):
        if value is not None:
            if model.startswith('mobilenetv3'):
                raise EvalError('%s takes no %s (it is AsymmNet with asymmrate 0); drop --%s'
                                % (model, name, name.replace('_', '-')))
            kwargs[name] = int(value)
    if classes is not None:
        kwargs['classes'] = int(classes)
    return kwargs


def _symbol_files(prefix):
    symbol = prefix + '-symbol.json'
    if not os.path.isfile(symbol):
        raise EvalError('--model-prefix %s: %s does not exist (expected the files of '
                        'HybridBlock.export / gluon_asymmnet.export: PREFIX-symbol.json, PREFIX-0000.params)'
                        % (prefix, symbol))
    found = sorted(glob.glob(glob.escape(prefix) + '-[0-9][0-9][0-9][0-9].params'))
    if not found:
        raise EvalError('--model-prefix %s: no parameter file %s-NNNN.params beside %s' % (prefix, prefix, symbol))
    return symbol, found[-1]


def _import_symbol(prefix, ctx):
    symbol, params = _symbol_files(prefix)
    try:
        sym = mx.sym.load(symbol)
    except mx.base.MXNetError as err:
        raise EvalError('%s is not an MXNet symbol file: %s' % (symbol, str(err).strip().splitlines()[-1]))
    inputs = [a for a in sym.list_arguments() if a == 'data']
    if not inputs:
        raise EvalError('%s has no input named "data"; its first arguments are %s'
                        % (symbol, ', '.join(sym.list_arguments()[:3])))
    if 'preprocess_mean' in sym.list_arguments() + sym.list_auxiliary_states():
        raise EvalError('%s was exported with preprocess=True (it takes uint8 NHWC images); evaluation feeds '
                        'normalised float32 NCHW batches: export without --preprocess' % symbol)
    # SymbolBlock.imports, with a typed input (which spares MXNet's "cannot decide type" warning).
    net = mx.gluon.SymbolBlock(sym, mx.sym.var('data', dtype='float32'))
    try:
        net.collect_params().load(params, ctx=ctx, cast_dtype=True, dtype_source='saved')
    except (mx.base.MXNetError, AssertionError, ValueError) as err:
        raise EvalError('%s does not fit %s: %s' % (params, symbol, str(err).strip().splitlines()[-1]))
    return net, params


def load_model(model=None, params=None, pretrained=None, model_prefix=None, root=DEFAULT_ROOT,
               multiplier=1.0, asymmrate=None, shuffle_groups=None, classes=None, ctx=None):
    """A network with weights, from one of three sources.

    Parameters
    ----------
    model : str, optional
        A name from :func:`gluon_asymmnet.get_model_list`; with ``params`` or
        ``pretrained``.
    params : str, optional
        Parameter file of any layout :func:`gluon_asymmnet.load_checkpoint` reads.
    pretrained : True or str, optional
        The model store's weights for this configuration (``True``) or the
        entry whose hash starts with this string.
    model_prefix : str, optional
        Instead of ``model``: ``PREFIX-symbol.json`` + ``PREFIX-NNNN.params``
        (the highest NNNN), as written by ``HybridBlock.export`` or
        :func:`gluon_asymmnet.export.export`.
    root : str
        Model store folder.
    multiplier, asymmrate, shuffle_groups, classes
        Constructor arguments (see :func:`model_kwargs`).
    ctx : Context or list of Context, optional

    Returns
    -------
    (HybridBlock, dict)
        The network and a description: ``model``, ``kwargs``, ``weights``.

    Raises
    ------
    EvalError, CheckpointError, gluon_asymmnet.model_store.ModelStoreError
    """
    ctx = ctx or mx.cpu()
    if model_prefix is not None:
        if model is not None or params is not None or pretrained:
            raise EvalError('--model-prefix brings its own graph and weights: drop --model/--params/--pretrained')
        net, path = _import_symbol(model_prefix, ctx)
        return net, {'model': os.path.basename(model_prefix), 'kwargs': {}, 'weights': path}
    if model is None:
        raise EvalError('name a model (--model NAME with --params FILE or --pretrained) or an exported '
                        'one (--model-prefix PREFIX)')
    kwargs = model_kwargs(model, multiplier, asymmrate, shuffle_groups, classes)
    if (params is None) == (not pretrained):
        raise EvalError('--model %s needs weights: give exactly one of --params FILE or --pretrained' % model)
    try:
        if params is not None:
            net = get_model(model, **kwargs)
            load_checkpoint(net, params, ctx=ctx)
            weights = params
        else:
            # strict: evaluation never runs a new, untrained classifier.
            net = get_model(model, pretrained=pretrained, root=root, ctx=ctx, strict=True, **kwargs)
            weights = 'pretrained' if pretrained is True else 'pretrained:%s' % pretrained
    except CheckpointError:
        raise
    except ValueError as err:
        raise EvalError('--model %s: %s' % (model, err))
    return net, {'model': model, 'kwargs': kwargs, 'weights': weights}


def _read_class_names(path):
    try:
        with open(path) as f:
            names = [line.strip() for line in f if line.strip()]
    except OSError as err:
        raise EvalError('--class-names %s cannot be read: %s' % (path, err.strerror or err))
    if not names:
        raise EvalError('--class-names %s lists no class' % path)
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise EvalError('--class-names %s lists %s more than once' % (path, dupes[0]))
    return names


def eval_batches(dataset=None, rec_val=None, rec_val_idx=None, data_dir=None, image_folder=None,
                 class_names=None, batch_size=32, num_workers=0, input_size=None, crop_ratio=0.875,
                 mean=None, std=None, classes=None, run_data=None):
    """Validation batches from exactly one source, with GluonCV's centre-crop preprocessing.

    Parameters
    ----------
    dataset : {'demo'}, optional
        The bundled handwritten digits (held-out split; 32x32 by default, as
        the demo trains).
    rec_val, rec_val_idx : str, optional
        ImageNet-style validation RecordIO (the ``.idx`` defaults to the one
        beside the ``.rec``).
    data_dir : str, optional
        ImageNet folder layout: ``DIR/val/<class>/*`` (labels from the sorted
        ``DIR/train`` class folders when present).
    image_folder : str, optional
        Any folder of class subfolders ``DIR/<class>/*``.
    class_names : str, optional
        With ``image_folder``: a text file, one class folder name per line,
        giving each folder its label (line number from 0), for a folder that
        holds a subset of the model's classes.
    batch_size, num_workers : int
    input_size : int, optional
        Network input side (default 224; 32 for the demo).
    crop_ratio : float
    mean, std : sequence of 3 float, optional
        RGB normalisation on the 0-255 scale (default ImageNet's).
    classes : sequence of str, optional
        With ``image_folder`` and no ``class_names`` file: the class names by
        label (a checkpoint's, :func:`run_defaults`).
    run_data : dict, optional
        Without any other source: a training run's validation data
        (:attr:`RunInfo.val_data <gluon_asymmnet.run_meta.RunInfo>`; ``{}`` is
        the digits), e.g. the held-out split of a single image folder.

    Returns
    -------
    (ImageBatches, dict)
        Batches and ``source``, ``input_size``, ``crop_ratio``, ``num_classes``
        (known classes, or None), ``num_samples``.

    Raises
    ------
    EvalError, gluon_asymmnet.data.DataError
    """
    given = [n for n, v in (('--dataset', dataset), ('--rec-val', rec_val), ('--data-dir', data_dir),
                            ('--image-folder', image_folder)) if v is not None]
    if not given and run_data is not None:
        if not run_data:
            dataset = 'demo'
        else:
            input_size = input_size or 224
            common = dict(batch_size=batch_size, num_workers=num_workers, crop_ratio=crop_ratio)
            common.update({k: v for k, v in (('mean', mean), ('std', std)) if v is not None})
            batches = get_data_loaders(train=False, input_size=input_size, **run_data, **common)[1]
            source = 'the validation data of the checkpoint\'s run (%s)' % ', '.join(
                '%s=%s' % kv for kv in sorted(run_data.items()))
            names = getattr(batches, 'class_names', None)
            return batches, {'source': source, 'input_size': input_size, 'crop_ratio': crop_ratio,
                             'num_classes': len(names) if names else None, 'num_samples': batches.num_samples}
        given = ['--dataset']
    if len(given) != 1:
        raise EvalError('give exactly one data source (--dataset demo, --rec-val, --data-dir or '
                        '--image-folder), got %s' % (', '.join(given) or 'none'))
    if rec_val_idx is not None and rec_val is None:
        raise EvalError('--rec-val-idx needs --rec-val')
    if class_names is not None and image_folder is None:
        raise EvalError('--class-names applies to --image-folder only')
    common = dict(batch_size=batch_size, num_workers=num_workers, crop_ratio=crop_ratio)
    common.update({k: v for k, v in (('mean', mean), ('std', std)) if v is not None})
    num_classes = None
    if dataset is not None:
        if dataset != 'demo':
            raise EvalError('unknown --dataset %r; the bundled one is "demo" (give ImageNet with '
                            '--rec-val or --data-dir)' % dataset)
        demo = demo_dataset()
        input_size = input_size or demo['input_size']
        batches = get_data_loaders(rec_val=demo['rec_val'], rec_val_idx=demo['rec_val_idx'], train=False,
                                   input_size=input_size, **common)[1]
        source, num_classes = 'demo digits (%s)' % demo['rec_val'], len(demo['classes'])
    elif rec_val is not None:
        input_size = input_size or 224
        batches = get_data_loaders(rec_val=rec_val, rec_val_idx=rec_val_idx, train=False,
                                   input_size=input_size, **common)[1]
        source = rec_val
    elif data_dir is not None:
        input_size = input_size or 224
        batches = get_data_loaders(data_dir=data_dir, train=False, input_size=input_size, **common)[1]
        source = os.path.join(data_dir, 'val')
    else:
        input_size = input_size or 224
        classes = _read_class_names(class_names) if class_names else classes
        batches = folder_batches(image_folder, input_size=input_size, classes=classes, **common)
        source = image_folder
        num_classes = len(classes) if classes else None
    names = getattr(batches, 'class_names', None)
    if num_classes is None and names:
        num_classes = len(names)
    return batches, {'source': source, 'input_size': input_size, 'crop_ratio': crop_ratio,
                     'num_classes': num_classes, 'num_samples': batches.num_samples}


def run_defaults(args):
    """Fill ``eval.py`` arguments left out from the ``.json`` beside ``--params`` (a training checkpoint).

    The model and its constructor arguments, input size, crop ratio, RGB
    mean/std and the class names (labels of an ``--image-folder``) come from
    the run; flags given explicitly win. Returns the run's
    :class:`~gluon_asymmnet.run_meta.RunInfo` or None (then only the usual
    defaults apply).
    """
    run = None
    if args.params and not args.model_prefix:
        try:
            run = read_run_info(args.params)
        except ValueError as err:
            raise EvalError('--params %s: %s' % (args.params, err))
    if run is not None and args.model in (None, run.model):
        args.model = run.model
        kwargs = run.kwargs
        for name, key in (('multiplier', 'multiplier'), ('asymmrate', 'asymmrate'),
                          ('shuffle_groups', 'shuffle_groups'), ('classes', 'classes')):
            if getattr(args, name) is None and key in kwargs:
                setattr(args, name, kwargs[key])
        args.input_size = args.input_size or run.input_size
        if args.crop_ratio is None:
            args.crop_ratio = run.crop_ratio
        args.rgb_mean = args.rgb_mean or run.mean
        args.rgb_std = args.rgb_std or run.std
    if args.crop_ratio is None:
        args.crop_ratio = 0.875
    return run


def calibration_images(batches, num_images):
    """The first ``num_images`` preprocessed images of ``batches`` as a float32 NumPy array."""
    if hasattr(batches, 'reset'):
        batches.reset()
    parts, have = [], 0
    for data, _ in batches:
        parts.append(data.asnumpy())
        have += data.shape[0]
        if have >= num_images:
            break
    if not parts:
        raise EvalError('no calibration image: the batches are empty')
    return np.concatenate(parts)[:num_images].astype(np.float32)


def _output_classes(net, input_size):
    try:
        out = net(mx.sym.var('data')).infer_shape(data=(1, 3, input_size, input_size))[1][0]
    except mx.base.MXNetError as err:
        raise EvalError('the model cannot run on %dx%d inputs: %s'
                        % (input_size, input_size, str(err).strip().splitlines()[-1]))
    return out[-1]


def evaluate(net, batches, info=None, ctx=None, progress=False):
    """Top-1/top-5 of ``net`` over ``batches`` (:func:`gluon_asymmnet.evaluate.evaluate_accuracy`).

    Parameters
    ----------
    net : HybridBlock
    batches : ImageBatches
    info : dict, optional
        From :func:`eval_batches`: checks that the data's labels fit the
        model's outputs before anything runs.
    ctx : Context or list of Context, optional
    progress : bool
        tqdm bar.

    Returns
    -------
    dict
        ``top1``, ``top5`` (fractions) and ``num_samples``.
    """
    if info is not None:
        classes = _output_classes(net, info['input_size'])
        if info.get('num_classes') and info['num_classes'] > classes:
            raise EvalError('the data has %d classes but the model predicts %d (build it with --classes %d)'
                            % (info['num_classes'], classes, info['num_classes']))
    return evaluate_accuracy(net, batches, ctx=ctx, progress=progress)


def _summary_configs(model, multiplier, asymmrate):
    if model is not None:
        if model not in get_model_list():
            raise EvalError('unknown model %r; choose from %s' % (model, ', '.join(get_model_list())))
        kwargs = model_kwargs(model, 1.0 if multiplier is None else multiplier, asymmrate)
        return [(model, kwargs['multiplier'], kwargs.get('asymmrate', 0 if model.startswith('mobilenetv3') else 1))]
    return [(m, w, r) for m in ('asymmnet_large', 'asymmnet_small') for w in SUMMARY_WIDTHS for r in SUMMARY_RATES]


def summary_rows(model=None, multiplier=None, asymmrate=None, input_size=224):
    """Counts of one configuration, or of the whole ``counts.csv`` grid, with the published figures.

    Parameters
    ----------
    model : str, optional
        One model (``multiplier`` default 1.0, ``asymmrate`` default 1); all
        of ``asymmnet_large``/``asymmnet_small`` x :data:`SUMMARY_WIDTHS` x
        :data:`SUMMARY_RATES` when None (asymmrate 0 is MobileNetV3).
    multiplier, asymmrate : optional
    input_size : int

    Returns
    -------
    list of dict
        ``model``, ``multiplier``, ``asymmrate``, and either ``macs``,
        ``params``, ``params_paper`` or ``invalid`` (the construction error);
        ``paper`` (dict or None) and ``checkpoints`` (list) of published figures.
    """
    figures = published_figures()
    rows = []
    for name, width, rate in _summary_configs(model, multiplier, asymmrate):
        row = {'model': name, 'multiplier': width, 'asymmrate': rate,
               'paper': figures['paper'].get((name, width, rate)),
               'checkpoints': figures['checkpoints'].get((name, width, rate), [])}
        if rate == 0 and name.startswith('asymmnet'):
            twin = name.replace('asymmnet', 'mobilenetv3')
            row['checkpoints'] = row['checkpoints'] + figures['checkpoints'].get((twin, width, 0), [])
        kwargs = {'multiplier': width} if name.startswith('mobilenetv3') else {'multiplier': width,
                                                                               'asymmrate': rate}
        try:
            net = get_model(name, **kwargs)
        except ValueError as err:
            row['invalid'] = str(err)
        else:
            row.update(profile(net, input_size))
        rows.append(row)
    return rows


def _paper_millions(v):
    return '%gM' % round(v / 1e6, 2)


def format_summary(rows):
    """Render :func:`summary_rows` as aligned text (counts exact; published figures beside them)."""
    head = '%-18s %5s %2s %13s %11s %11s  %-28s %s' % (
        'model', 'width', 'r', 'MACs', 'params', 'params*', 'paper: top1 / params* / MAdds',
        'checkpoint: top1 / top5')
    lines = [head, '-' * len(head)]
    for r in rows:
        paper = r['paper']
        paper_txt = ('%.1f / %s / %s' % (paper['top1'], _paper_millions(paper['params_paper']),
                                          _paper_millions(paper['madds'])) if paper else '')
        ckpt = '; '.join('%.2f / %.2f (%s)' % (t1, t5, n) for n, t1, t5 in r['checkpoints'])
        if 'invalid' in r:
            counts = '%-37s' % 'invalid configuration (see below)'
        else:
            counts = '%13s %11s %11s' % tuple('{:,}'.format(r[k]) for k in ('macs', 'params', 'params_paper'))
        lines.append(('%-18s %5.2f %2d %s  %-28s %s' % (r['model'], r['multiplier'], r['asymmrate'], counts,
                                                       paper_txt, ckpt)).rstrip())
    notes = [r for r in rows if 'invalid' in r]
    lines.append('')
    lines.append('params: every trainable parameter; params*: the paper\'s convention (one kernel factor per '
                 'conv, see gluon_asymmnet.profiler). r = asymmrate; r 0 is MobileNetV3.')
    for r in notes:
        lines.append('invalid %s x%.2f r%d: %s' % (r['model'], r['multiplier'], r['asymmrate'],
                                                   re.sub(r'\s+', ' ', r['invalid'])))
    return '\n'.join(lines)


def layer_table(model, multiplier=1.0, asymmrate=None, input_size=224):
    """Per-layer MACs and parameters of one configuration (:func:`gluon_asymmnet.profiler.format_table`)."""
    kwargs = model_kwargs(model, 1.0 if multiplier is None else multiplier, asymmrate)
    try:
        net = get_model(model, **kwargs)
    except ValueError as err:
        raise EvalError('%s: %s' % (model, err))
    return format_table(profile(net, input_size, per_layer=True)['layers'])


def random_weights(net, seed=0):
    """Initialise ``net`` for speed-only benchmarks: MSRA weights and non-trivial BatchNorm statistics.

    Follows ``make_reference_checkpoint.py``'s distributions (gamma, running
    variance ~ U(0.5, 1.5); beta, running mean, biases ~ N(0, 0.1)), so the
    activations keep a realistic scale and INT8 error figures mean something.
    """
    rng = np.random.RandomState(seed)
    net.initialize(mx.init.MSRAPrelu(), force_reinit=True)
    for key, p in sorted(net.collect_params().items()):
        if key.endswith(('running_var', 'gamma')):
            p.set_data(mx.nd.array(rng.uniform(0.5, 1.5, p.shape)))
        elif key.endswith(('running_mean', 'beta', 'bias')):
            p.set_data(mx.nd.array(rng.normal(0, 0.1, p.shape)))
    return net


def benchmark_model(net, backends, batches=None, info=None, input_size=224, batch_sizes=(1, 32), warmup=5,
                    repeats=20, calib_images=64, calib_mode='naive', exclude=None, threads=None, workdir=None,
                    progress=None, ort_spinning=False):
    """:func:`gluon_asymmnet.inference.benchmark` with calibration images chosen for the data.

    Calibration uses real images that are not scored when possible: the demo
    digits' training split (with ``--dataset demo``, and when no data is
    given); otherwise the first ``calib_images`` images of the evaluation data.

    Returns
    -------
    dict
        :func:`~gluon_asymmnet.inference.benchmark`'s result, with
        ``setup['calibration']`` naming the images used.
    """
    from .inference import INT8_BACKENDS, benchmark
    calib, calib_source = None, None
    if any(b in INT8_BACKENDS for b in backends):
        demo_source = info is None or info['source'].startswith('demo digits')
        if demo_source:
            demo = demo_dataset()
            size = info['input_size'] if info else demo['input_size']
            train_split = get_data_loaders(rec_val=demo['rec_train'], rec_val_idx=demo['rec_train_idx'],
                                           train=False, input_size=size, batch_size=32, num_workers=0,
                                           crop_ratio=info['crop_ratio'] if info else 0.875)[1]
            calib = calibration_images(train_split, calib_images)
            calib_source = 'demo digits training split, %d images' % len(calib)
        else:
            calib = calibration_images(batches, calib_images)
            calib_source = 'first %d images of %s' % (len(calib), info['source'])
    result = benchmark(net, backends, input_size=input_size, batch_sizes=batch_sizes, warmup=warmup,
                       repeats=repeats, calib=calib, eval_batches=batches,
                       eval_input_size=info['input_size'] if info else None, threads=threads, workdir=workdir,
                       calib_mode=calib_mode, exclude=exclude, progress=progress, ort_spinning=ort_spinning)
    result['setup']['calibration'] = calib_source
    return result


def build_parser():
    """The argument parser of ``eval.py``."""
    import argparse
    from .inference import BACKENDS
    p = argparse.ArgumentParser(
        prog='eval.py', description='Evaluate (top-1/top-5), summarise (MACs/parameters) or benchmark '
                                    '(CPU inference backends) AsymmNet and MobileNetV3 models.')
    m = p.add_argument_group('model (a checkpoint of train_imagenet.py brings its own: the .json beside --params)')
    m.add_argument('--model', choices=get_model_list(), help='model name')
    m.add_argument('--width-scale', '--multiplier', dest='multiplier', type=float, default=None,
                   help='width multiplier (default 1.0)')
    m.add_argument('--asymmrate', type=int, default=None, help='AsymmNet feature-reuse rate (default 1)')
    m.add_argument('--shuffle-group', dest='shuffle_groups', type=int, default=None,
                   help='AsymmNet channel-shuffle groups (default 0)')
    m.add_argument('--classes', type=int, default=None,
                   help="number of classes (default: the checkpoint run's, else 1000; 10 with --dataset demo)")
    m.add_argument('--params', '--params-file', dest='params', help='parameter file (any layout load_checkpoint reads); a training checkpoint needs no other '
                        'model or preprocessing flag')
    m.add_argument('--pretrained', nargs='?', const=True, default=None, metavar='HASH',
                   help="the model store's weights for this configuration, or the entry whose hash starts with HASH")
    m.add_argument('--root', default=DEFAULT_ROOT, help='model store folder')
    m.add_argument('--model-prefix', help='exported model: PREFIX-symbol.json and PREFIX-NNNN.params')
    d = p.add_argument_group('data (GluonCV preprocessing: resize to ceil(input-size / crop-ratio), centre crop)')
    d.add_argument('--dataset', choices=('demo',), help='the bundled handwritten digits (held-out split)')
    d.add_argument('--rec-val', help='validation RecordIO file (.rec)')
    d.add_argument('--rec-val-idx', help='its index (.idx; default: beside the .rec)')
    d.add_argument('--data-dir', help='ImageNet folders: DIR/val/<class>/* (labels from DIR/train if present)')
    d.add_argument('--image-folder', help='any folder of class subfolders DIR/<class>/*')
    d.add_argument('--class-names', help='with --image-folder: file of folder names, one per line, label = line')
    d.add_argument('--input-size', type=int, default=None, help='input side (default 224; 32 for the demo)')
    d.add_argument('--crop-ratio', type=float, default=None,
                   help="centre-crop ratio (default: the checkpoint run's, else 0.875)")
    d.add_argument('--rgb-mean', type=_rgb, default=None,
                   help="comma-separated RGB mean, 0-255 scale (default: the checkpoint run's, else ImageNet's)")
    d.add_argument('--rgb-std', type=_rgb, default=None,
                   help="comma-separated RGB std, 0-255 scale (default: the checkpoint run's, else ImageNet's)")
    d.add_argument('--batch-size', type=int, default=32, help='batch size (default 32)')
    d.add_argument('-j', '--num-data-workers', dest='num_workers', type=int, default=0,
                   help='decoding processes (default 0: in this process)')
    d.add_argument('--num-gpus', type=int, default=0, help='GPUs to evaluate on (default 0: CPU)')
    o = p.add_argument_group('what to do (default: evaluate)')
    o.add_argument('--summary', action='store_true',
                   help='MACs and parameters of --model (or of every model and width) beside the published figures')
    o.add_argument('--verbose', action='store_true', help='with --summary --model: per-layer table')
    o.add_argument('--benchmark', action='store_true', help='time every inference backend side by side')
    o.add_argument('--json', metavar='PATH', help='also write the figures as JSON')
    o.add_argument('--no-progress', action='store_true', help='no progress bar')
    b = p.add_argument_group('benchmark')
    b.add_argument('--backends', default=','.join(BACKENDS), help='comma-separated, of: %s' % ', '.join(BACKENDS))
    b.add_argument('--bench-input-size', type=int, default=224, help='image side for the timings (default 224)')
    b.add_argument('--latency-batch', type=int, default=1, help='batch size of the latency column (default 1)')
    b.add_argument('--throughput-batch', type=int, default=32, help='batch size of the throughput column (default 32)')
    b.add_argument('--warmup', type=int, default=5, help='untimed calls per backend (default 5)')
    b.add_argument('--repeats', type=int, default=20, help='timed rounds, interleaved (default 20)')
    b.add_argument('--calib-images', type=int, default=64, help='INT8 calibration images (default 64)')
    b.add_argument('--int8-exclude', default=None,
                   help='comma-separated convolutions kept in float32 by the INT8 backends (structural names, '
                        'shell patterns: features.0,*.se.*); default: global pooling and the convolutions after '
                        'it (and the SE convolutions in mxnet-int8); "none": quantize all')
    b.add_argument('--threads', type=int, default=None, help='onnxruntime threads (default: physical cores)')
    b.add_argument('--ort-spinning', action='store_true',
                   help="let onnxruntime's idle threads spin (faster alone, but they slow the next backend)")
    b.add_argument('--workdir', default=None, help='folder for the ONNX files (default: a temporary one)')
    return p


def _rgb(text):
    values = tuple(float(v) for v in text.split(','))
    if len(values) != 3:
        raise ValueError(text)
    return values


def _exclusions(text):
    if text is None:
        return None
    if text.strip().lower() == 'none':
        return ()
    return [e.strip() for e in text.split(',') if e.strip()]


def _write_json(path, payload):
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    with open(path, 'w') as f:
        json.dump(payload, f, indent=2, sort_keys=True, default=str)


def _positive(parser, args, names):
    for name in names:
        value = getattr(args, name)
        if value is not None and value <= 0:
            parser.error('--%s must be positive, got %r' % (name.replace('_', '-'), value))


def main(argv=None):
    """``eval.py``: parse the arguments and run the summary, the benchmark or the evaluation.

    Returns
    -------
    int
        Exit status.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    _positive(parser, args, ('multiplier', 'classes', 'input_size', 'crop_ratio', 'batch_size', 'bench_input_size',
                             'latency_batch', 'throughput_batch', 'repeats', 'calib_images', 'threads'))
    if args.summary and args.benchmark:
        parser.error('--summary and --benchmark are separate runs: choose one')
    if args.verbose and not (args.summary and args.model):
        parser.error('--verbose goes with --summary --model NAME (the per-layer table of one model)')
    try:
        run = run_defaults(args)
        if args.summary:
            rows = summary_rows(args.model, args.multiplier, args.asymmrate)
            print(format_summary(rows))
            if args.verbose:
                print()
                print(layer_table(args.model, args.multiplier, args.asymmrate))
            if args.json:
                _write_json(args.json, {'summary': rows})
            return 0
        has_data = any(v is not None for v in (args.dataset, args.rec_val, args.data_dir, args.image_folder)) or (
            run is not None and run.val_data is not None)
        batches = info = None
        if has_data or not args.benchmark:
            batches, info = eval_batches(args.dataset, args.rec_val, args.rec_val_idx, args.data_dir,
                                         args.image_folder, args.class_names, args.batch_size, args.num_workers,
                                         args.input_size, args.crop_ratio, args.rgb_mean, args.rgb_std,
                                         run.class_names if run is not None else None,
                                         run.val_data if run is not None else None)
        classes = args.classes
        if classes is None and args.dataset == 'demo' and args.model_prefix is None:
            classes = info['num_classes']
        ctx = [mx.gpu(i) for i in range(args.num_gpus)] or [mx.cpu()]
        if args.benchmark and args.model and not args.params and not args.pretrained:
            net = random_weights(get_model(args.model, **model_kwargs(
                args.model, args.multiplier or 1.0, args.asymmrate, args.shuffle_groups, classes)))
            described = {'model': args.model, 'weights': 'random (speed only)'}
        else:
            net, described = load_model(args.model, args.params, args.pretrained, args.model_prefix, args.root,
                                        args.multiplier or 1.0, args.asymmrate, args.shuffle_groups, classes,
                                        ctx=ctx[0])
        if args.benchmark:
            backends = [b.strip() for b in args.backends.split(',') if b.strip()]
            if info is not None:
                _output_classes(net, info['input_size'])
            say = None if args.no_progress else (lambda msg: print('... ' + msg, flush=True))
            result = benchmark_model(
                net, backends, batches, info, args.bench_input_size, (args.latency_batch, args.throughput_batch),
                args.warmup, args.repeats, args.calib_images, 'naive',
                _exclusions(args.int8_exclude), args.threads, args.workdir, say, args.ort_spinning)
            title = '%s (%s), %s' % (described['model'], described['weights'],
                                     'accuracy on %s' % info['source'] if info else 'no accuracy data')
            from .inference import format_benchmark, format_targets, target_status
            print(format_benchmark(result, title))
            if result['setup'].get('calibration'):
                print('INT8 calibration: %s.' % result['setup']['calibration'])
            status = target_status(result)
            if status:
                print()
                print(format_targets(status))
            if args.json:
                _write_json(args.json, dict(result, model=described))
            return 0
        figures = evaluate(net, batches, info, ctx=ctx, progress=not args.no_progress)
        print('top1=%f top5=%f (%d images of %s)' % (figures['top1'], figures['top5'], figures['num_samples'],
                                                     info['source']))
        if args.json:
            _write_json(args.json, dict(figures, model=described, data=info))
        return 0
    except (EvalError, CheckpointError, DataError, ModelStoreError, ValueError, BackendError) as err:
        parser.exit(2, 'error: %s\n' % err)


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
    from .training import parse_args, train
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
