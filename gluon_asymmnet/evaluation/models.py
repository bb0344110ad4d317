"""The network to evaluate: a model by name with weights, an exported symbol, or random weights for speed."""
import glob
import os

import mxnet as mx
import numpy as np

from ..checkpoint import CheckpointError, load_checkpoint
from ..model_store import DEFAULT_ROOT
from ..model_zoo import get_model, get_model_list, takes_feature_reuse
from .errors import EvalError

__all__ = ['model_kwargs', 'load_model', 'random_weights']


def model_kwargs(model, multiplier=1.0, asymmrate=None, shuffle_groups=None, classes=None):
    """Constructor arguments for ``model``, refusing those it does not take.

    Raises
    ------
    EvalError
        Unknown model, or feature-reuse arguments for a model without feature reuse (MobileNetV2/V3).
    """
    if model not in get_model_list():
        raise EvalError('unknown model %r; choose from %s' % (model, ', '.join(get_model_list())))
    kwargs = {'multiplier': float(multiplier)}
    for name, value in (('asymmrate', asymmrate), ('shuffle_groups', shuffle_groups)):
        if value is not None:
            if not takes_feature_reuse(model):
                raise EvalError('%s takes no %s (it has no feature reuse); drop --%s'
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
            net = get_model(model, pretrained=pretrained, root=root, ctx=ctx, **kwargs)
            weights = 'pretrained' if pretrained is True else 'pretrained:%s' % pretrained
    except CheckpointError:
        raise
    except ValueError as err:
        raise EvalError('--model %s: %s' % (model, err))
    return net, {'model': model, 'kwargs': kwargs, 'weights': weights}


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
