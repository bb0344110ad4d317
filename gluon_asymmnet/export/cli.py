"""``python -m gluon_asymmnet.export``: export any model + checkpoint, then verify every format."""
import argparse
import os

from ..checkpoint import CheckpointError
from ..deploy import deploys_by_default
from ..model_flags import add_flags, network_dests, resolve
from ..model_store import DEFAULT_ROOT, ModelStoreError
from ..model_zoo import get_model
from ..run_meta import read_run_info
from .exporter import FORMATS, TOLERANCE, ExportError, compare_exported, export

__all__ = ['build_parser', 'main']


def build_parser():
    """The argument parser of ``python -m gluon_asymmnet.export``."""
    parser = argparse.ArgumentParser(
        prog='python -m gluon_asymmnet.export',
        description='Export a model and its parameter file as MXNet symbol JSON + params and/or ONNX, then '
                    'compare every format with the Gluon network (exit status 1 when an error is too large). '
                    'A checkpoint of train_imagenet.py needs no model, class or preprocessing flag: the .json '
                    'beside it names them.')
    model = parser.add_argument_group("model (default: the checkpoint run's, from the .json beside --params)")
    add_flags(model, network_dests(), helps={'model': "model name (default: the checkpoint run's)"})
    model.add_argument('--params', required=True,
                       help='parameter file of any layout load_checkpoint reads, or a store hash prefix')
    model.add_argument('--root', default=DEFAULT_ROOT, help='model store folder for a hash prefix')
    out = parser.add_argument_group('export')
    out.add_argument('--prefix', required=True, help='output prefix (writes PREFIX-symbol.json, '
                                                     'PREFIX-0000.params, PREFIX.onnx)')
    out.add_argument('--formats', default=','.join(FORMATS), help='comma-separated: symbol, onnx')
    out.add_argument('--preprocess', action='store_true',
                     help="exported graph takes uint8 NHWC RGB images, normalised inside (with the checkpoint "
                          "run's mean/std, else the model's: ImageNet's)")
    out.add_argument('--trainable', action='store_true',
                     help='write the training graph as the symbol: it can be imported and trained on a oneDNN '
                          'CPU (the default inference graph is for inference only)')
    out.add_argument('--no-deploy', dest='deploy', action='store_false',
                     help="export the network's own inference graph (its parameter file loads back with "
                          'load_checkpoint) instead of its deployment form')
    out.add_argument('--batch-size', type=int,
                     help='the batch size the files will run: the deployment form chosen for it, the ONNX batch '
                          'dimension fixed to it, the comparison run at it (default: any batch size)')
    add_flags(out, ('input_size', 'rgb_mean', 'rgb_std'), helps={
        'input_size': "input side the graph is traced at (default: the checkpoint run's, else the model's, 224)",
        'rgb_mean': "with --preprocess: RGB mean inside the graph, 0-255 scale (default: the checkpoint run's, "
                    "else the model's)",
        'rgb_std': "with --preprocess: RGB std inside the graph, 0-255 scale (default: the checkpoint run's, "
                   "else the model's)"})
    return parser


def main(argv=None):
    """``python -m gluon_asymmnet.export``: export any model + checkpoint, then verify every format."""
    parser = build_parser()
    args = parser.parse_args(argv)
    # One line each, as every other refusal (parser.error would print the whole usage first).
    if (args.rgb_mean or args.rgb_std) and not args.preprocess:
        parser.exit(2, 'error: --rgb-mean/--rgb-std set the normalisation inside the exported graph: add '
                       '--preprocess\n')
    if args.batch_size is not None and (args.batch_size < 1 or not args.deploy):
        parser.exit(2, 'error: --batch-size %d: it chooses the deployment form, so it needs a positive value and '
                       'no --no-deploy\n' % args.batch_size)
    try:
        is_file = os.path.isfile(args.params)
        run = read_run_info(args.params) if is_file else None
        if args.model is None and run is None:
            parser.error('--model is needed: %s has no training run description (.json) beside it' % args.params)
        choice = resolve(vars(args), run, pretrained=not is_file and args.params)
        # strict: an export never carries a new, untrained classifier.
        net = get_model(choice.model, pretrained=args.params, root=args.root, strict=True, **choice.kwargs)
        pre = choice.preprocess
        deployed = args.deploy and deploys_by_default(net)
        files = export(net, args.prefix, pre.input_size, args.formats, args.preprocess, args.trainable, pre.mean,
                       pre.std, deployed, args.batch_size)
        batches = (args.batch_size,) if args.batch_size else (1, 2)
        errors = compare_exported(net, files, pre.input_size, args.preprocess, batches, mean=pre.mean, std=pre.std)
    except (ValueError, CheckpointError, ModelStoreError, ExportError) as err:
        parser.exit(2, 'error: %s\n' % err)
    graphs = {'symbol': 'training graph: trainable' if args.trainable else
              'deployment form' if deployed else "the network's own inference graph",
              'onnx': 'deployment form' if deployed else "the network's own inference graph"}
    for name in ('symbol', 'params', 'onnx'):
        if name in files:
            print('wrote %s%s' % (files[name], ' (%s)' % graphs[name] if name in graphs else ''))
    failed = False
    for name, err in errors.items():
        ok = err < TOLERANCE[name]
        failed |= not ok
        print('%-6s max relative error vs Gluon (batch %s): %.2e (%s, limit %.0e)'
              % (name, ' and '.join(map(str, batches)), err, 'ok' if ok else 'TOO LARGE', TOLERANCE[name]))
    return 1 if failed else 0
