"""``eval.py``: evaluate (top-1/top-5), summarise (MACs/parameters), benchmark (CPU inference backends) or predict."""
import argparse
import json
import os

import mxnet as mx

from ..checkpoint import CheckpointError
from ..data import DataError
from ..data.pixels import set_max_image_pixels
from ..files import atomic_write, folder_problem, write_failure_reason
from ..inference import BACKENDS, BackendError, format_benchmark, get_backend
from ..model_flags import add_flags, network_dests, preprocess_dests, resolve
from ..model_store import DEFAULT_ROOT, ModelStoreError
from ..model_zoo import get_model
from ..preprocessing import PreprocessConfig
from ..run_meta import read_run_info
from .batches import _read_class_names, eval_batches
from .benchmark import benchmark_model
from .errors import EvalError
from .evaluate import evaluate, output_classes
from .models import apply_export_record, load_model, random_weights
from .predict import predict_images, predictions_payload
from .summary import format_summary, layer_table, summary_rows

__all__ = ['MODES', 'build_parser', 'run_defaults', 'main']


def build_parser():
    """The argument parser of ``eval.py``."""
    p = argparse.ArgumentParser(
        prog='eval.py', description='Evaluate (top-1/top-5), summarise (MACs/parameters), benchmark '
                                    '(CPU inference backends) or predict (top-k classes of your images) '
                                    'AsymmNet, MobileNetV3 and MobileNetV2 models.')
    m = p.add_argument_group('model (a checkpoint of train_imagenet.py brings its own: the .json beside --params)')
    add_flags(m, network_dests(), helps={
        'classes': "number of classes (default: the checkpoint run's, else 1000; 10 with --dataset demo)"})
    m.add_argument('--params', '--params-file', dest='params',
                   help='parameter file (any layout load_checkpoint reads); a training checkpoint needs no other '
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
    d.add_argument('--class-names', help='with --image-folder: file of folder names, one per line, label = line; '
                                         'with --predict: the name of each output, one per line')
    add_flags(d, preprocess_dests(), helps={
        'input_size': "input side (default: the checkpoint run's, else the model's, 224; 32 for the demo)",
        'crop_ratio': "centre-crop ratio (default: the checkpoint run's, else the model's)",
        'rgb_mean': "comma-separated RGB mean, 0-255 scale (default: the checkpoint run's, else the model's)",
        'rgb_std': "comma-separated RGB std, 0-255 scale (default: the checkpoint run's, else the model's)"})
    d.add_argument('--batch-size', type=int, default=None,
                   help="batch size (default 32; an export's fixed batch with --model-prefix)")
    d.add_argument('-j', '--num-data-workers', dest='num_workers', type=int, default=0,
                   help='decoding processes (default 0: in this process)')
    d.add_argument('--num-gpus', type=int, default=0, help='GPUs to evaluate on (default 0: CPU)')
    d.add_argument('--max-image-pixels', type=int, default=None,
                   help='images with more pixels are skipped, named and never decoded (decompression bombs; '
                        "default 89478485, PIL's)")
    o = p.add_argument_group('what to do (default: evaluate)')
    o.add_argument('--summary', action='store_true',
                   help='MACs and parameters of --model (or of every model and width) beside the published figures')
    o.add_argument('--verbose', action='store_true', help='with --summary --model: per-layer table')
    o.add_argument('--benchmark', action='store_true', help='time every inference backend side by side')
    o.add_argument('--predict', nargs='+', metavar='PATH',
                   help='the top classes of these images (files, folders, globs), named: by the run of a '
                        'checkpoint, ImageNet for 1000 classes, --class-names, else indices')
    o.add_argument('--topk', type=int, default=5, help='with --predict: classes per image (default 5)')
    o.add_argument('--save-vis', metavar='DIR', help='with --predict: write each image with its classes as PNG')
    o.add_argument('--json', metavar='PATH', help='also write the figures (or predictions) as JSON')
    o.add_argument('--no-progress', action='store_true', help='no progress bar')
    b = p.add_argument_group('benchmark')
    b.add_argument('--backends', '--backend', default=None,
                   help='comma-separated, of: %s (default: all; with --predict: one, default the Gluon network as '
                        'evaluated)' % ', '.join(BACKENDS))
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


def run_defaults(args):
    """Fill ``eval.py`` arguments left out from the ``.json`` beside ``--params`` (a training checkpoint).

    The model and its constructor arguments (those of the run when it is the
    run's model), input size, crop ratio, RGB mean/std (the run's, else the
    model's from the registry and its store entry) and the class names
    (labels of an ``--image-folder``) come from the run; flags given
    explicitly win (:func:`gluon_asymmnet.model_flags.resolve`). Sets
    ``args.model_kwargs`` (the ``get_model`` arguments) and the
    preprocessing arguments; ``input_size`` stays None for the demo digits
    without a run (their own 32). Returns the run's
    :class:`~gluon_asymmnet.run_meta.RunInfo` or None.
    """
    run = None
    if args.params and not args.model_prefix:
        try:
            run = read_run_info(args.params)
        except ValueError as err:
            raise EvalError('--params %s: %s' % (args.params, err))
    given_size = args.input_size
    choice = resolve(vars(args), run, pretrained=args.pretrained or False)
    args.model, args.model_kwargs = choice.model, choice.kwargs
    pre = choice.preprocess
    args.crop_ratio, args.rgb_mean, args.rgb_std = pre.crop_ratio, pre.mean, pre.std
    if given_size is not None or run is not None or args.dataset != 'demo':
        args.input_size = pre.input_size
    return run


def _exclusions(text):
    if text is None:
        return None
    if text.strip().lower() == 'none':
        return ()
    return [e.strip() for e in text.split(',') if e.strip()]


def _check_json_target(path):
    """Refuse a ``--json`` path that cannot be written, before anything is evaluated."""
    if os.path.isdir(path):
        raise EvalError('--json %s is a folder; give a file name, e.g. %s' % (path, os.path.join(path, 'eval.json')))
    problem = folder_problem(os.path.dirname(os.path.abspath(path)), create=False)
    if problem:
        raise EvalError('--json %s cannot be written: %s; give a path in a folder you can write' % (path, problem))


def _write_json(path, payload):
    def write(tmp):
        with open(tmp, 'w') as f:
            json.dump(payload, f, indent=2, sort_keys=True, default=str)
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        atomic_write(path, write)
    except OSError as err:
        raise EvalError('--json %s: %s; the figures are printed above'
                        % (path, write_failure_reason(err, os.path.dirname(os.path.abspath(path)))))


def _check_gpus(num_gpus):
    """Refuse ``--num-gpus`` beyond the GPUs this MXNet can use, before anything is loaded."""
    if num_gpus <= 0:
        return
    try:
        found = mx.context.num_gpus()
    except mx.base.MXNetError:
        found = 0
    if found < num_gpus:
        raise EvalError('--num-gpus %d: %s; drop --num-gpus to evaluate on the CPU'
                        % (num_gpus, 'this MXNet sees no GPU (a CPU-only build, or no GPU visible)' if not found
                           else 'this MXNet sees only %d GPU%s' % (found, 's' if found > 1 else '')))


def _positive(parser, args, names):
    for name in names:
        value = getattr(args, name)
        if value is not None and value <= 0:
            parser.error('--%s must be positive, got %r' % (name.replace('_', '-'), value))


def _summary(args, run):
    """``--summary``: MACs and parameters beside the published figures."""
    width, rate = args.model_kwargs.get('multiplier'), args.model_kwargs.get('asymmrate')
    rows = summary_rows(args.model, width, rate)
    print(format_summary(rows))
    if args.verbose:
        print()
        print(layer_table(args.model, width, rate))
    if args.json:
        _write_json(args.json, {'summary': rows})
    return 0


def _data(args, run, required=True):
    """The evaluation batches and their description; (None, None) when none are given and none are ``required``."""
    given = any(v is not None for v in (args.dataset, args.rec_val, args.data_dir, args.image_folder)) or (
        run is not None and run.val_data is not None)
    if not (given or required):
        return None, None
    return eval_batches(dataset=args.dataset, rec_val=args.rec_val, rec_val_idx=args.rec_val_idx,
                        data_dir=args.data_dir, image_folder=args.image_folder, class_names=args.class_names,
                        batch_size=args.batch_size, num_workers=args.num_workers, input_size=args.input_size,
                        crop_ratio=args.crop_ratio, mean=args.rgb_mean, std=args.rgb_std,
                        classes=run.class_names if run is not None else None,
                        run_data=run.val_data if run is not None else None)


def _network(args, info, ctx, random_ok=False):
    """The network to run and its description: loaded weights, or random ones where ``random_ok`` and none given."""
    kwargs = dict(args.model_kwargs)
    if 'classes' not in kwargs and args.dataset == 'demo' and args.model_prefix is None:
        kwargs['classes'] = info['num_classes']
    if random_ok and args.model and not args.params and not args.pretrained:
        return random_weights(get_model(args.model, **kwargs)), {'model': args.model, 'weights': 'random (speed only)'}
    return load_model(args.model, args.params, args.pretrained, args.model_prefix, args.root, ctx=ctx,
                      input_size=info['input_size'] if info else args.bench_input_size, **kwargs)


def _contexts(args):
    return [mx.gpu(i) for i in range(args.num_gpus)] or [mx.cpu()]


def _benchmark(args, run):
    """``--benchmark``: every inference backend timed side by side (with accuracy when data is given)."""
    batches, info = _data(args, run, required=False)
    net, described = _network(args, info, _contexts(args)[0], random_ok=True)
    backends = [b.strip() for b in (args.backends or ','.join(BACKENDS)).split(',') if b.strip()]
    if info is not None:
        output_classes(net, info['input_size'])
    say = None if args.no_progress else (lambda msg: print('... ' + msg, flush=True))
    result = benchmark_model(
        net, backends, batches=batches, info=info, input_size=args.bench_input_size,
        batch_sizes=(args.latency_batch, args.throughput_batch), warmup=args.warmup, repeats=args.repeats,
        calib_images=args.calib_images, calib_mode='naive', exclude=_exclusions(args.int8_exclude),
        threads=args.threads, workdir=args.workdir, progress=say, ort_spinning=args.ort_spinning)
    title = '%s (%s), %s' % (described['model'], described['weights'],
                             'accuracy on %s' % info['source'] if info else 'no accuracy data')
    print(format_benchmark(result, title))
    if result['setup'].get('calibration'):
        print('INT8 calibration: %s.' % result['setup']['calibration'])
    if args.json:
        _write_json(args.json, dict(result, model=described))
    return 0


def _evaluate(args, run):
    """The default: top-1/top-5 on the data."""
    batches, info = _data(args, run)
    ctx = _contexts(args)
    net, described = _network(args, info, ctx[0])
    figures = evaluate(net, batches, info, ctx=ctx, progress=not args.no_progress)
    print('top1=%f top5=%f (%d images of %s)' % (figures['top1'], figures['top5'], figures['num_samples'],
                                                 info['source']))
    if args.json:
        _write_json(args.json, dict(figures, model=described, data=info))
    return 0


def _predict(args, run):
    """``--predict``: each image's top classes, named by --class-names, the run, ImageNet (1000 classes) or index."""
    given = [f for f, v in (('--dataset', args.dataset), ('--rec-val', args.rec_val), ('--data-dir', args.data_dir),
                            ('--image-folder', args.image_folder)) if v is not None]
    if given:
        raise EvalError('--predict classifies the images it names: drop %s' % ', '.join(given))
    backends = [b.strip() for b in (args.backends or '').split(',') if b.strip()]
    if len(backends) > 1:
        raise EvalError('--predict runs one --backend, got %s' % ', '.join(backends))
    if backends:
        get_backend(backends[0])
    if args.save_vis:
        problem = folder_problem(args.save_vis)
        if problem:
            raise EvalError('--save-vis %s cannot be written: %s' % (args.save_vis, problem))
    pre = PreprocessConfig(args.input_size, args.crop_ratio, args.rgb_mean, args.rgb_std)
    net, described = load_model(args.model, args.params, args.pretrained, args.model_prefix, args.root,
                                ctx=_contexts(args)[0],
                                input_size=pre.input_size, **args.model_kwargs)
    outputs = output_classes(net, pre.input_size)
    names, source = None, 'ImageNet' if outputs == 1000 else 'indices'
    if args.class_names:
        names, source = _read_class_names(args.class_names), args.class_names
    elif run is not None and run.class_names:
        names, source = run.class_names, 'the run (%s)' % run.path
    if names is not None and len(names) > outputs:
        raise EvalError('%s lists %d class names for a model of %d outputs' % (source, len(names), outputs))
    print('%s (%s): top-%d, class names from %s' % (described['model'], described['weights'], args.topk, source))
    options = dict(threads=args.threads, exclude=_exclusions(args.int8_exclude), workdir=args.workdir,
                   ort_spinning=args.ort_spinning)
    found, skipped, _ = predict_images(net, args.predict, topk=args.topk, class_names=names, preprocess=pre,
                                       batch_size=args.batch_size, backend=backends[0] if backends else None,
                                       backend_options=options, save_vis=args.save_vis)
    if args.json:
        _write_json(args.json, dict(predictions_payload(found, skipped), model=described, class_names=source,
                                    preprocess=pre.to_dict(), backend=backends[0] if backends else 'gluon'))
    return 0


# What eval.py does besides evaluating: the flag that asks for it -> the function that does it,
# ``mode(args, run) -> exit status`` after run_defaults. A new mode is one function, its flag and its entry.
MODES = {'summary': _summary, 'benchmark': _benchmark, 'predict': _predict}


def main(argv=None):
    """``eval.py``: parse the arguments and run the summary, the benchmark, the prediction or the evaluation.

    Returns
    -------
    int
        Exit status.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    _positive(parser, args, ('width_scale', 'classes', 'input_size', 'crop_ratio', 'batch_size', 'topk',
                             'max_image_pixels',
                             'bench_input_size',
                             'latency_batch', 'throughput_batch', 'repeats', 'calib_images', 'threads'))
    chosen = [name for name in MODES if getattr(args, name)]
    if len(chosen) > 1:
        flags = ['--' + name for name in MODES]
        parser.error('%s and %s are separate runs: choose one' % (', '.join(flags[:-1]), flags[-1]))
    if args.verbose and not (args.summary and args.model):
        parser.error('--verbose goes with --summary --model NAME (the per-layer table of one model)')
    set_max_image_pixels(args.max_image_pixels)
    try:
        _check_gpus(args.num_gpus)
        if args.json:
            _check_json_target(args.json)
        if args.model_prefix:
            apply_export_record(args)
        args.batch_size = args.batch_size or 32
        run = run_defaults(args)
        return (MODES[chosen[0]] if chosen else _evaluate)(args, run)
    except (EvalError, CheckpointError, DataError, ModelStoreError, ValueError, BackendError) as err:
        parser.exit(2, 'error: %s\n' % err)
