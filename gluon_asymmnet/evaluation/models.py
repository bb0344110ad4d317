"""The network to evaluate: a model by name with weights, an exported symbol, or random weights for speed."""
import glob
import os

import mxnet as mx
import numpy as np

from ..checkpoint import CheckpointError, import_symbol_block, load_checkpoint, read_symbol
from ..export_record import check_files, read_record, record_path
from ..model_store import DEFAULT_ROOT
from ..model_zoo import get_model
from ..preprocessing import IMAGENET
from .errors import EvalError

__all__ = ['load_model', 'random_weights', 'apply_export_record']


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


def apply_export_record(args):
    """Take ``--input-size`` and ``--batch-size`` from ``PREFIX-export.json`` where not given; refuse others.

    An export records the input size and the batch size (a fixed-batch deployment form) it was made for
    (:mod:`gluon_asymmnet.export_record`); exports made before the record existed are read as before.
    """
    record = read_record(args.model_prefix)
    if record is None:
        return None
    height, width = record['input_size']
    where = '%s was exported for' % args.model_prefix
    if height != width:
        raise EvalError('%s input %dx%d (%s); eval.py evaluates square inputs: export again at one size'
                        % (where, height, width, record_path(args.model_prefix)))
    if args.input_size is not None and args.input_size != height:
        raise EvalError('--input-size %d: %s input %dx%d (%s); drop --input-size, or export again at %d'
                        % (args.input_size, where, height, width, record_path(args.model_prefix), args.input_size))
    args.input_size = height
    batch = record['batch_size']
    if batch is not None and args.batch_size is not None and args.batch_size != batch:
        raise EvalError('--batch-size %d: %s a fixed batch of %d (its deployment form, %s); drop --batch-size, or '
                        'export again for batch %d' % (args.batch_size, where, batch,
                                                       record_path(args.model_prefix), args.batch_size))
    if batch is not None:
        args.batch_size = batch
    return record


def _import_symbol(prefix, ctx, input_size):
    """The exported graph and weights, read and checked by the safe reader at the evaluation's input size.

    Where the export left a record, its files must be the ones recorded (one export, not two mixed).
    """
    symbol, params = _symbol_files(prefix)
    record = read_record(prefix)
    if record is not None:
        check_files(prefix, record, {'symbol': symbol, 'params': params})
    sym = read_symbol(symbol)
    if 'preprocess_mean' in sym.list_arguments() + sym.list_auxiliary_states():
        raise EvalError('%s was exported with preprocess=True (it takes uint8 NHWC images); evaluation feeds '
                        'normalised float32 NCHW batches: export without --preprocess' % symbol)
    # Parameters of another width or model are refused here, naming the parameter, not at the first batch.
    net = import_symbol_block(symbol, params, ctx=ctx, input_shape=(1, 3, input_size, input_size))
    return net, params


def load_model(model=None, params=None, pretrained=None, model_prefix=None, root=DEFAULT_ROOT, ctx=None,
               input_size=IMAGENET.input_size, **kwargs):
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
    ctx : Context or list of Context, optional
    input_size : int
        With ``model_prefix``: the input side the exported parameters are
        checked at (the graph's shapes against the file's).
    **kwargs
        The model's constructor arguments (``multiplier``, ``classes``, ...;
        :attr:`gluon_asymmnet.model_zoo.ModelSpec.arguments`).

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
        net, path = _import_symbol(model_prefix, ctx, input_size)
        return net, {'model': os.path.basename(model_prefix), 'kwargs': {}, 'weights': path}
    if model is None:
        raise EvalError('name a model (--model NAME with --params FILE or --pretrained) or an exported '
                        'one (--model-prefix PREFIX)')
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


def random_weights(net, seed=0):
    """Initialise ``net`` with seeded random weights that keep every layer working, for speed-only runs.

    Convolution and dense weights are He-normal for their fan-in (standard
    deviation ``sqrt(2 / fan_in)``, ``fan_in`` the product of all but the first
    dimension, so a depthwise 3x3 kernel has fan-in 9); BatchNorm gamma and
    running variance ~ U(0.5, 1.5); beta, running mean and biases ~ N(0, 0.1).
    Activations then stay of order 1 through the network: the outputs differ
    from image to image and move with every layer's weights, so errors measured
    on them (INT8 ``rel_error``) are errors of a network that computes
    something. (MXNet's ``MSRAPrelu`` averages fan-in and fan-out, which
    shrinks depthwise kernels by the channel count: every output collapses to
    the classifier's bias, and any two networks agree.) Deterministic for a
    given ``seed``; returns ``net``.
    """
    rng = np.random.RandomState(seed)
    net.initialize(force_reinit=True)
    # Structural order (features.0.weight, ...): the same draws whatever prefix the network got.
    for key, p in net._collect_params_with_prefix().items():
        if key.endswith(('running_var', 'gamma')):
            value = rng.uniform(0.5, 1.5, p.shape)
        elif key.endswith(('running_mean', 'beta', 'bias')):
            value = rng.normal(0, 0.1, p.shape)
        else:
            value = rng.normal(0, np.sqrt(2.0 / np.prod(p.shape[1:])), p.shape)
        p.set_data(mx.nd.array(value, dtype=p.dtype))
    return net
