"""``export`` and ``compare_exported``: what :mod:`gluon_asymmnet.export` describes."""
import os
import tempfile

import mxnet as mx
import numpy as np
from mxnet.gluon import HybridBlock

from ..backend import TrainInferHybridBlock, tracing_mode
from ..checkpoint import CheckpointError, import_symbol_block, read_symbol
from ..deploy import deploy_network, deploys_by_default
from ..export_record import prefix_lock, record_path, write_record
from ..files import free_bytes, is_disk_full, read_only
from ..metrics import relative_error
from ..param_file import read_index
from ..preprocessing import IMAGENET

__all__ = ['MEAN_RGB', 'STD_RGB', 'FORMATS', 'TOLERANCE', 'ExportError', 'Preprocess', 'export',
           'compare_exported']

# ImageNet's RGB statistics, the default without a network's own (names kept for existing imports).
MEAN_RGB, STD_RGB = IMAGENET.mean, IMAGENET.std
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
    mean, std : tuple of 3 float, optional
        Per-channel statistics, RGB, on the 0-255 scale (default: the
        network's ``preprocess_config``, else ImageNet's).
    """

    def __init__(self, net, mean=None, std=None):
        super().__init__(prefix='preprocess_')
        mean, std = _statistics(net, mean, std)
        if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
            raise ValueError('mean and std need 3 values each (RGB), std > 0; got %r and %r' % (mean, std))
        self.net = net
        with self.name_scope():
            self.mean = self.params.get_constant('mean', mx.nd.array(mean).reshape((1, 3, 1, 1)))
            self.std = self.params.get_constant('std', mx.nd.array(std).reshape((1, 3, 1, 1)))

    def hybrid_forward(self, F, x, mean, std):
        x = F.transpose(F.cast(x, 'float32'), axes=(0, 3, 1, 2))
        return self.net(F.broadcast_div(F.broadcast_sub(x, mean), std))


def _statistics(net, mean, std):
    """``mean``/``std``, each defaulting to the network's ``preprocess_config`` (else ImageNet's)."""
    config = getattr(net, 'preprocess_config', None) or IMAGENET
    return (config.mean if mean is None else mean), (config.std if std is None else std)


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


def _to_onnx(symbol_file, params_file, shape, dtype, path, name):
    """MXNet's ONNX exporter, then initializers out of the graph inputs and a named batch dimension.

    ``name`` (the export's prefix) is what error messages call the graph.
    """
    import onnx
    try:
        mx.onnx.export_model(symbol_file, params_file, in_shapes=[shape], in_types=[dtype],
                             onnx_file_path=path, dynamic=True, dynamic_input_shapes=[(None,) + shape[1:]])
    except OSError:
        raise  # writing failed (a full disk): export() says so, naming the target
    except Exception as err:  # mx2onnx raises bare AttributeError/NotImplementedError/KeyError per operator
        raise ExportError('ONNX export of %s failed in MXNet\'s converter: %s: %s'
                          % (name, type(err).__name__, err)) from err
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


def _target(prefix, formats):
    """The folder and the final paths of an export, checked writable before anything is computed."""
    prefix = os.fspath(prefix)
    if not prefix or prefix.endswith((os.sep, '/')) or os.path.isdir(prefix):
        raise ValueError('export prefix %r names a folder; give a path prefix inside it, e.g. %s (writes %s-symbol.json, '
                         '%s-0000.params, %s.onnx)' % ((prefix, os.path.join(prefix, 'model')) +
                                                       (os.path.join(prefix, 'model'),) * 3))
    folder = os.path.dirname(os.path.abspath(prefix))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as err:
        raise ExportError('cannot create the export folder %s: %s' % (folder, err.strerror or err)) from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ExportError('cannot write in the export folder %s: %s'
                          % (folder, 'read-only file system' if read_only(folder) else 'permission denied'))
    final = {}
    if 'symbol' in formats:
        final.update(symbol=prefix + '-symbol.json', params=prefix + '-0000.params')
    if 'onnx' in formats:
        final['onnx'] = prefix + '.onnx'
    for path in final.values():
        if os.path.isdir(path):
            raise ExportError('cannot export to %s: it is a folder' % path)
    return folder, final


def _write_failure(prefix, folder, err, free):
    """One line for a failed export write; a full disk (``free`` bytes left at the failure) is named as such."""
    reason = err.strerror if isinstance(err, OSError) and err.strerror else \
        (str(err).strip().splitlines() or [type(err).__name__])[-1]
    if is_disk_full(err, free):
        now = free_bytes(folder)
        reason = 'the disk holding %s is full%s' % (
            folder, ' (the export needs more than the %.1f MiB free there)' % (now / 2. ** 20) if now else '')
    return 'export to %s failed: %s; nothing was changed in %s' % (prefix, reason, folder)


def _optimize_onnx(path, batch_size):
    """The deployment form's ONNX file at ``path`` rewritten in place for onnxruntime's blocked layout."""
    import onnx
    from . import ort_layout
    onnx.save(ort_layout.optimize(path, batch_size), path)


def export(net, prefix, input_size=224, formats=FORMATS, preprocess=False, trainable=False, mean=None, std=None,
           deploy=None, batch_size=None):
    """Export ``net`` as symbol JSON + params and/or ONNX, all files or none.

    Every file is written under a temporary name in the target folder,
    checked (the symbol JSON and the parameter file are parsed back), and
    only then are all renamed to their final names: a failure (a full disk,
    a converter error) leaves no partial file and an earlier export under
    the same prefix as it was. The network is hybridized (a side effect, as
    for ``HybridBlock.export``).

    Parameters
    ----------
    net : HybridBlock
        An initialized network taking float32 NCHW input.
    prefix : str
        Output path prefix (not a folder); folders are created.
    input_size : int or (int, int)
        Height and width the graph is traced at (ONNX keeps them fixed, the
        batch dimension is dynamic unless ``batch_size`` is given).
    formats : iterable of str or str
        Any of ``'symbol'``, ``'onnx'`` (or ``'symbol,onnx'``).
    preprocess : bool
        Wrap the network in :class:`Preprocess`: the exported graph takes
        uint8 NHWC RGB images.
    trainable : bool
        Write the network's training graph as the symbol (module notes); the
        default inference graph is for inference only. ONNX is unaffected.
    mean, std : tuple of 3 float, optional
        With ``preprocess``: the RGB statistics (0-255 scale) the network was
        trained with (default: its ``preprocess_config``, else ImageNet's).
    deploy : bool, optional
        Export the deployment form as the inference graph (module notes).
        Default: for this package's networks where it is faster
        (:func:`gluon_asymmnet.deploy.deploys_by_default`), any other
        HybridBlock as it is. False: the network's own inference graph, whose
        parameter file ``load_checkpoint`` reads back.
    batch_size : int, optional
        With the deployment form: the batch size the files will run. The
        form is chosen for it and the ONNX file's batch dimension is fixed to
        it (onnxruntime then keeps the SE scaling in its blocked layout).
        None: any batch size.

    Returns
    -------
    dict
        ``'symbol'`` and ``'params'`` (with ``'symbol'``), ``'onnx'`` (with
        ``'onnx'``): the paths written.

    Raises
    ------
    ValueError
        Bad arguments (a prefix that is a folder, an uninitialized network, a
        ``batch_size`` without the deployment form).
    ExportError
        A folder that cannot be written, a failed write (naming the prefix
        and, for a full disk, saying so), or a converter failure.
    """
    formats = _formats(formats)
    height, width = _size(input_size)
    if getattr(net, '_input_dtype', 'float32') != 'float32':  # set by CheckedNet.cast
        raise ValueError("export takes a float32 network; this one was cast to %s: net.cast('float32') first"
                         % net._input_dtype)
    ctx = _context(net)
    deploy = deploys_by_default(net) if deploy is None else bool(deploy)
    if batch_size is not None and (not deploy or int(batch_size) != batch_size or batch_size < 1):
        raise ValueError('batch_size chooses the deployment form: it needs deploy and a positive integer, got %r%s'
                         % (batch_size, '' if deploy else ' with deploy=False'))
    folder, final = _target(prefix, formats)
    if preprocess:
        shape, dtype = (1, height, width, 3), np.uint8
        mean, std = _statistics(net, mean, std)
    else:
        shape, dtype = (1, 3, height, width), np.float32
    x = mx.nd.zeros(shape, dtype=dtype, ctx=ctx)

    def ready(network):
        block = network
        if preprocess:
            block = Preprocess(network, mean, std)
            block.mean.initialize(ctx=ctx)
            block.std.initialize(ctx=ctx)
        block.hybridize()
        block(x)
        return block
    own = ready(net) if trainable or not deploy else None
    # The inference graph: the deployment form or the network's own; the training graph is never a deployment form.
    inference = ready(deploy_network(net, batch_size, (height, width))) if deploy and (
        not trainable or 'onnx' in formats) else own
    failure = None
    try:
        with tempfile.TemporaryDirectory(prefix='.%s.export-' % os.path.basename(prefix), dir=folder) as tmp:
            try:
                base = os.path.join(tmp, 'model')
                written = {}
                if 'symbol' in formats:
                    written = _write_graph(own if trainable else inference, base, x,
                                           'train' if trainable else 'inference')
                if 'onnx' in formats:
                    source = base
                    if trainable or 'symbol' not in formats:
                        source = os.path.join(tmp, 'inference')
                        _write_graph(inference, source, x, 'inference')
                    written['onnx'] = _to_onnx(source + '-symbol.json', source + '-0000.params', shape, dtype,
                                               base + '.onnx', prefix)
                    if deploy:
                        _optimize_onnx(written['onnx'], batch_size)
                # The record ties the files together (sha256 each) and says what they were made for.
                write_record(os.path.join(tmp, 'record.json'),
                             {kind: (os.path.basename(path), written[kind]) for kind, path in final.items()},
                             (height, width), batch_size if deploy else None, preprocess, deploy, trainable)
                with prefix_lock(folder):  # another export to this folder renames its files before or after
                    for kind, path in final.items():
                        os.replace(written[kind], path)
                    os.replace(os.path.join(tmp, 'record.json'), record_path(prefix))
            except (OSError, mx.base.MXNetError, CheckpointError) as err:
                # Judged before the temporary files are removed: a full disk has nothing left now.
                failure = _write_failure(prefix, folder, err, free_bytes(folder))
    except OSError as err:
        failure = _write_failure(prefix, folder, err, None)
    if failure:
        raise ExportError(failure)
    return final


def _write_graph(block, base, x, mode):
    """:func:`_export_graph`, then both files read back (MXNet writes a symbol file cut short by a full disk
    without an error); returns their paths."""
    _export_graph(block, base, x, mode)
    written = {'symbol': base + '-symbol.json', 'params': base + '-0000.params'}
    read_symbol(written['symbol'])
    read_index(written['params'], quantized=True)
    return written


def _export_graph(block, base, x, mode):
    """``block.export`` of the graph traced for ``mode``; ``block`` has run on ``x`` once, hybridized.

    A wrapper (:class:`Preprocess`) traces its network inside its own graph,
    so it is traced again, for ``mode``.
    """
    if isinstance(block, TrainInferHybridBlock):
        block.export(base, epoch=0, mode=mode)
    else:
        block._clear_cached_op()
        with tracing_mode(mode):
            block(x)
        block.export(base, epoch=0)


def _normalise(images, mean, std):
    """NumPy's float32 twin of :class:`Preprocess` (same operations, same rounding)."""
    mean = np.array(mean, np.float32).reshape(1, 3, 1, 1)
    std = np.array(std, np.float32).reshape(1, 3, 1, 1)
    return (images.transpose(0, 3, 1, 2).astype(np.float32) - mean) / std


def compare_exported(net, files, input_size=224, preprocess=False, batch_sizes=(1, 2), seed=0, mean=None,
                     std=None):
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
    mean, std : tuple of 3 float, optional
        The statistics the export normalises with (``preprocess``; defaults
        as :func:`export`'s).

    Returns
    -------
    dict
        ``format -> max over batch sizes of max|exported - gluon| / max|gluon|``.
    """
    height, width = _size(input_size)
    ctx = _context(net)
    mean, std = _statistics(net, mean, std)
    rng = np.random.RandomState(seed)
    runners = {}
    if 'symbol' in files:
        with_symbol = import_symbol_block(files['symbol'], files['params'], ctx=ctx,
                                          input_dtype='uint8' if preprocess else 'float32')
        runners['symbol'] = lambda x: with_symbol(mx.nd.array(x, dtype=x.dtype, ctx=ctx)).asnumpy()
    if 'onnx' in files:
        import onnxruntime
        session = onnxruntime.InferenceSession(files['onnx'], providers=['CPUExecutionProvider'])
        runners['onnx'] = lambda x: session.run(None, {session.get_inputs()[0].name: x})[0]
    errors = dict.fromkeys(runners, 0.0)
    for batch in batch_sizes:
        if preprocess:
            x = rng.randint(0, 256, (batch, height, width, 3)).astype(np.uint8)
            normalised = _normalise(x, mean, std)
        else:
            x = normalised = rng.standard_normal((batch, 3, height, width)).astype(np.float32)
        expected = net(mx.nd.array(normalised, ctx=ctx)).asnumpy()
        for name, run in runners.items():
            errors[name] = max(errors[name], relative_error(run(x), expected))
    return errors

