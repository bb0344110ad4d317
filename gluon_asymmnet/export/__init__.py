"""Ship a network as MXNet symbol JSON + parameters, and as ONNX, verified against Gluon.

``export(net, prefix)`` writes

- ``prefix-symbol.json`` and ``prefix-0000.params``: loadable by
  ``mx.gluon.SymbolBlock.imports`` and by the Module API
  (``mx.model.load_checkpoint(prefix, 0)``); the parameter file also loads
  back into a Gluon network with :func:`gluon_asymmnet.load_checkpoint`
  (layout ``export``);
- ``prefix.onnx``: MXNet's ONNX exporter (opset of the installed onnx), with a
  dynamic batch dimension named ``batch``; the weights are stored as graph
  initializers only (MXNet lists them as graph inputs too, which keeps
  onnxruntime from folding them as constants, so they are removed from the
  inputs); checked with ``onnx.checker``.

With ``preprocess=True`` the exported graph takes uint8 RGB images in NHWC
layout and normalises them inside (ImageNet mean and std, as the released
model was trained), like GluonCV's ``export_block``.

Command line::

    python -m gluon_asymmnet.export --model asymmnet_large --params FILE --prefix out/asymmnet_large
"""
import argparse
import os
import tempfile
import warnings

import mxnet as mx
import numpy as np
from mxnet.gluon import HybridBlock

from ..checkpoint import CheckpointError
from ..metrics import relative_error
from ..model_store import DEFAULT_ROOT, ModelStoreError
from ..model_zoo import get_model, get_model_list, takes_feature_reuse

__all__ = ['MEAN_RGB', 'STD_RGB', 'FORMATS', 'TOLERANCE', 'ExportError', 'Preprocess', 'export',
           'compare_exported', 'main']

# ImageNet statistics of the released training recipe (DESIGN.md section 5), RGB.
MEAN_RGB = (123.68, 116.779, 103.939)
STD_RGB = (58.393, 57.12, 57.375)
FORMATS = ('symbol', 'onnx')
# Largest relative error accepted between an exported format and the Gluon network.
TOLERANCE = {'symbol': 1e-5, 'onnx': 1e-4}


class ExportError(RuntimeError):
    """A network that an exporter cannot convert."""


class Preprocess(HybridBlock):
    """uint8 RGB images, NHWC -> ``(x - mean) / std`` in float32 NCHW -> ``net``.

    Its two constants are named ``preprocess_mean`` and ``preprocess_std`` in
    exported files; :func:`gluon_asymmnet.load_checkpoint` skips them.

    Parameters
    ----------
    net : HybridBlock
        The network, taking float32 NCHW input.
    mean, std : tuple of 3 float
        Per-channel statistics, RGB, on the 0-255 scale.
    """

    def __init__(self, net, mean=MEAN_RGB, std=STD_RGB):
        super().__init__(prefix='preprocess_')
        if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
            raise ValueError('mean and std need 3 values each (RGB), std > 0; got %r and %r' % (mean, std))
        self.net = net
        with self.name_scope():
            self.mean = self.params.get_constant('mean', mx.nd.array(mean).reshape((1, 3, 1, 1)))
            self.std = self.params.get_constant('std', mx.nd.array(std).reshape((1, 3, 1, 1)))

    def hybrid_forward(self, F, x, mean, std):
        x = F.transpose(F.cast(x, 'float32'), axes=(0, 3, 1, 2))
        return self.net(F.broadcast_div(F.broadcast_sub(x, mean), std))


def _size(input_size):
    size = (input_size, input_size) if np.isscalar(input_size) else tuple(input_size)
    if len(size) != 2 or not all(int(s) == s and s > 0 for s in size):
        raise ValueError('input_size must be a positive integer or (height, width), got %r' % (input_size,))
    return tuple(int(s) for s in size)


def _formats(formats):
    formats = tuple(f.strip() for f in formats.split(',')) if isinstance(formats, str) else tuple(formats)
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise ValueError('formats must be a non-empty subset of %s, got %r' % (', '.join(FORMATS), formats))
    return formats


def _context(net):
    params = list(net.collect_params().values())
    for p in params:
        if p._data is None and not p._deferred_init:
            raise ValueError('parameter %s of the network is not initialized: load weights first '
                             '(get_model(..., pretrained=...), load_checkpoint) or call initialize()' % p.name)
    return params[0].list_ctx()[0] if params else mx.cpu()


def _to_onnx(symbol_file, params_file, shape, dtype, path):
    """MXNet's ONNX exporter, then initializers out of the graph inputs and a named batch dimension."""
    import onnx
    try:
        mx.onnx.export_model(symbol_file, params_file, in_shapes=[shape], in_types=[dtype],
                             onnx_file_path=path, dynamic=True, dynamic_input_shapes=[(None,) + shape[1:]])
    except Exception as err:  # mx2onnx raises bare AttributeError/NotImplementedError/KeyError per operator
        raise ExportError('ONNX export of %s failed in MXNet\'s converter: %s: %s'
                          % (symbol_file, type(err).__name__, err)) from err
    model = onnx.load(path)
    weights = {init.name for init in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in weights]
    del model.graph.input[:]
    model.graph.input.extend(inputs)
    for value in list(model.graph.input) + list(model.graph.output):
        dims = value.type.tensor_type.shape.dim
        if dims:
            dims[0].ClearField('dim_value')
            dims[0].dim_param = 'batch'
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, path)
    return path


def export(net, prefix, input_size=224, formats=FORMATS, preprocess=False):
    """Export ``net`` as symbol JSON + params and/or ONNX.

    The network is hybridized (a side effect, as for ``HybridBlock.export``).

    Parameters
    ----------
    net : HybridBlock
        An initialized network taking float32 NCHW input.
    prefix : str
        Output path prefix; folders are created.
    input_size : int or (int, int)
        Height and width the graph is traced at (ONNX keeps them fixed, the
        batch dimension is dynamic).
    formats : iterable of str or str
        Any of ``'symbol'``, ``'onnx'`` (or ``'symbol,onnx'``).
    preprocess : bool
        Wrap the network in :class:`Preprocess`: the exported graph takes
        uint8 NHWC RGB images.

    Returns
    -------
    dict
        ``'symbol'`` and ``'params'`` (with ``'symbol'``), ``'onnx'`` (with
        ``'onnx'``): the paths written.
    """
    formats = _formats(formats)
    height, width = _size(input_size)
    ctx = _context(net)
    block = net
    if preprocess:
        block = Preprocess(net)
        block.mean.initialize(ctx=ctx)
        block.std.initialize(ctx=ctx)
        shape, dtype = (1, height, width, 3), np.uint8
    else:
        shape, dtype = (1, 3, height, width), np.float32
    block.hybridize()
    block(mx.nd.zeros(shape, dtype=dtype, ctx=ctx))
    folder = os.path.dirname(os.path.abspath(prefix))
    os.makedirs(folder, exist_ok=True)
    files = {}
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        base = prefix if 'symbol' in formats else os.path.join(tmp, 'model')
        block.export(base, epoch=0)
        if 'symbol' in formats:
            files['symbol'], files['params'] = base + '-symbol.json', base + '-0000.params'
        if 'onnx' in formats:
            files['onnx'] = _to_onnx(base + '-symbol.json', base + '-0000.params', shape, dtype, prefix + '.onnx')
    return files


def _normalise(images):
    """NumPy's float32 twin of :class:`Preprocess` (same operations, same rounding)."""
    mean = np.array(MEAN_RGB, np.float32).reshape(1, 3, 1, 1)
    std = np.array(STD_RGB, np.float32).reshape(1, 3, 1, 1)
    return (images.transpose(0, 3, 1, 2).astype(np.float32) - mean) / std


def compare_exported(net, files, input_size=224, preprocess=False, batch_sizes=(1, 2), seed=0):
    """Largest relative error of each exported file against the Gluon network on random input.

    The reference normalises uint8 images with NumPy in float32 (for
    ``preprocess``), so the check covers the exported preprocessing too.

    Parameters
    ----------
    net : HybridBlock
        The network that was exported.
    files : dict
        What :func:`export` returned.
    input_size : int or (int, int)
    preprocess : bool
        Whether the export took uint8 NHWC images.
    batch_sizes : tuple of int
    seed : int

    Returns
    -------
    dict
        ``format -> max over batch sizes of max|exported - gluon| / max|gluon|``.
    """
    height, width = _size(input_size)
    ctx = _context(net)
    rng = np.random.RandomState(seed)
    runners = {}
    if 'symbol' in files:
        with warnings.catch_warnings():
            # The graph's input dtype is only known at the first call (uint8 or float32); MXNet warns about it.
            warnings.filterwarnings('ignore', 'Cannot decide type for the following arguments')
            with_symbol = mx.gluon.SymbolBlock.imports(files['symbol'], ['data'], files['params'], ctx=ctx)
        runners['symbol'] = lambda x: with_symbol(mx.nd.array(x, dtype=x.dtype, ctx=ctx)).asnumpy()
    if 'onnx' in files:
        import onnxruntime
        session = onnxruntime.InferenceSession(files['onnx'], providers=['CPUExecutionProvider'])
        runners['onnx'] = lambda x: session.run(None, {session.get_inputs()[0].name: x})[0]
    errors = dict.fromkeys(runners, 0.0)
    for batch in batch_sizes:
        if preprocess:
            x = rng.randint(0, 256, (batch, height, width, 3)).astype(np.uint8)
            normalised = _normalise(x)
        else:
            x = normalised = rng.standard_normal((batch, 3, height, width)).astype(np.float32)
        expected = net(mx.nd.array(normalised, ctx=ctx)).asnumpy()
        for name, run in runners.items():
            errors[name] = max(errors[name], relative_error(run(x), expected))
    return errors


def main(argv=None):
    """``python -m gluon_asymmnet.export``: export any model + checkpoint, then verify every format."""
    parser = argparse.ArgumentParser(
        prog='python -m gluon_asymmnet.export',
        description='Export a model and its parameter file as MXNet symbol JSON + params and/or ONNX, then '
                    'compare every format with the Gluon network (exit status 1 when an error is too large).')
    parser.add_argument('--model', required=True, choices=get_model_list())
    parser.add_argument('--multiplier', type=float, default=1.0, help='width multiplier')
    parser.add_argument('--asymmrate', type=int, help='feature-reuse rate (asymmnet_*, mobilenetv2_asymm)')
    parser.add_argument('--shuffle-groups', type=int,
                        help='channel shuffle groups (asymmnet_*, mobilenetv2_asymm)')
    parser.add_argument('--classes', type=int, default=1000)
    parser.add_argument('--params', required=True,
                        help='parameter file of any layout load_checkpoint reads, or a store hash prefix')
    parser.add_argument('--root', default=DEFAULT_ROOT, help='model store folder for a hash prefix')
    parser.add_argument('--prefix', required=True, help='output prefix (writes PREFIX-symbol.json, '
                                                        'PREFIX-0000.params, PREFIX.onnx)')
    parser.add_argument('--input-size', type=int, default=224)
    parser.add_argument('--formats', default=','.join(FORMATS), help='comma-separated: symbol, onnx')
    parser.add_argument('--preprocess', action='store_true',
                        help='exported graph takes uint8 NHWC RGB images, normalised inside')
    args = parser.parse_args(argv)
    kwargs = {'multiplier': args.multiplier, 'classes': args.classes}
    for name in ('asymmrate', 'shuffle_groups'):
        if getattr(args, name) is not None:
            if not takes_feature_reuse(args.model):
                parser.error('--%s applies to mobilenetv2_asymm and the asymmnet_* models only'
                             % name.replace('_', '-'))
            kwargs[name] = getattr(args, name)
    try:
        net = get_model(args.model, pretrained=args.params, root=args.root, **kwargs)
        files = export(net, args.prefix, args.input_size, args.formats, args.preprocess)
        errors = compare_exported(net, files, args.input_size, args.preprocess)
    except (ValueError, CheckpointError, ModelStoreError, ExportError) as err:
        parser.exit(2, 'error: %s\n' % err)
    for name in ('symbol', 'params', 'onnx'):
        if name in files:
            print('wrote %s' % files[name])
    failed = False
    for name, err in errors.items():
        ok = err < TOLERANCE[name]
        failed |= not ok
        print('%-6s max relative error vs Gluon (batch 1 and 2): %.2e (%s, limit %.0e)'
              % (name, err, 'ok' if ok else 'TOO LARGE', TOLERANCE[name]))
    return 1 if failed else 0
