"""Transfer learning: a pretrained backbone under a new classifier, frozen stages, kept BatchNorm statistics.

The networks end in one classifier, ``output.0`` (a 1x1 convolution from the
1280-wide features to the classes). Fine-tuning on other classes loads every
other parameter from a pretrained file and starts a new classifier, as timm
does when the class count changes (GluonCV users do it by hand). The stages
(:func:`stage_of_layers`) are the groups of ``features`` layers with one
output stride, the authors' "stage1" to "stage5": strides 2, 4, 8, 16 and 32.
"""
import logging

import mxnet as mx
from mxnet.gluon import nn

from .checkpoint import CheckpointError, load_checkpoint
from .features import layer_strides

__all__ = ['CLASSIFIER', 'NUM_STAGES', 'load_pretrained', 'stage_of_layers', 'freeze_stages', 'keep_bn_stats',
           'set_backbone_lr_mult']

log = logging.getLogger('gluon_asymmnet')

# Structural names (shell patterns) of the classifier's parameters.
CLASSIFIER = ('output.0.*',)
NUM_STAGES = 5


def _classifier_params(net):
    return [p for k, p in net._collect_params_with_prefix().items() if k.startswith('output.')]


def load_pretrained(net, path, ctx=None, layout=None, new_head=None, init=None, logger=None):
    """Load a pretrained parameter file into ``net``, the classifier only when it fits and is wanted.

    Parameters
    ----------
    net : AsymmNet
    path : str
        A parameter file of any layout :func:`gluon_asymmnet.load_checkpoint` reads.
    ctx : Context or list of Context, optional
    layout : str, optional
        Force a layout.
    new_head : bool, optional
        ``None``: keep the file's classifier when its shape fits the network
        (same class count), else start a new one. ``True``: always a new one
        (e.g. the same number of other classes). ``False``: the file must fit
        entirely.
    init : mxnet.init.Initializer, optional
        For a new classifier not yet initialised (default ``Xavier``, as
        GluonCV's fine-tuning tutorial); an initialised one keeps its values.
    logger : logging.Logger, optional
        Where the line saying a classifier was started anew goes (default the
        ``gluon_asymmnet`` logger, as a warning).

    Returns
    -------
    dict
        ``layout`` (the file's layout) and ``new_head`` (whether the
        classifier was left out of the load).

    Raises
    ------
    CheckpointError
        The file does not fit even without the classifier (naming the first
        problem), or ``new_head=False`` and the classifier does not fit.
    """
    if not new_head:
        try:
            return dict(layout=load_checkpoint(net, path, ctx=ctx, layout=layout), new_head=False)
        except CheckpointError:
            if new_head is False:
                raise
    # Names what else does not fit, if anything; the network is untouched then.
    found = load_checkpoint(net, path, ctx=ctx, layout=layout, exclude=CLASSIFIER)
    head = _classifier_params(net)
    fresh = [p for p in head if p._data is None and not p._deferred_init]
    if fresh:
        if isinstance(ctx, mx.Context):
            ctx = [ctx]
        for p in fresh:
            p.initialize(None, ctx or [mx.cpu()], default_init=init or mx.init.Xavier())
    (logger or log).warning('%s: loaded every parameter but the classifier from %s (layout %s); the classifier '
                            'output.0 (%d classes) starts anew: train it before use'
                            % (type(net).__name__, path, found, getattr(net, 'classes', head[0].shape[0])))
    return dict(layout=found, new_head=True)


def stage_of_layers(net):
    """The stage (1 to 5: output stride 2 to 32) of each layer of ``net.features``; None after pooling."""
    stages = []
    for stride, _ in layer_strides(net):
        stages.append(stride.bit_length() - 1 if stride else None)
    return stages


def freeze_stages(net, k):
    """Stop training the layers of stages 1..``k`` (the stem and the blocks up to stride ``2**k``).

    Their parameters get ``grad_req='null'`` and their BatchNorm layers keep
    their running statistics (:func:`keep_bn_stats`): a frozen layer computes
    in training what it computes in inference.

    Returns
    -------
    list of str
        Structural names of the frozen parameters.
    """
    if not 0 <= k <= NUM_STAGES:
        raise ValueError('freeze_stages: k must be in 0..%d (stages at strides 2..32), got %r' % (NUM_STAGES, k))
    frozen = []
    if k == 0:
        return frozen
    for i, (layer, stage) in enumerate(zip(net.features, stage_of_layers(net))):
        if stage is None or stage > k:
            continue
        for name, p in layer._collect_params_with_prefix('features.%d' % i).items():
            p.grad_req = 'null'
            frozen.append(name)
        keep_bn_stats(layer)
    return frozen


def _batchnorms(block):
    if isinstance(block, nn.BatchNorm):
        yield block
    for child in block._children.values():
        yield from _batchnorms(child)


def keep_bn_stats(block):
    """Make every BatchNorm in ``block`` use and keep its running statistics in training too.

    (MXNet's ``use_global_stats``; gamma and beta still train unless frozen.)
    Call before hybridizing, or hybridize again. Returns the number of layers.
    """
    layers = list(_batchnorms(block))
    for bn in layers:
        bn._kwargs['use_global_stats'] = True
    return len(layers)


def set_backbone_lr_mult(net, mult):
    """``lr_mult = mult`` on every parameter but the classifier's (GluonCV's per-parameter multiplier).

    Returns the number of parameters changed.
    """
    head = {id(p) for p in _classifier_params(net)}
    changed = 0
    for p in net.collect_params().values():
        if id(p) not in head:
            p.lr_mult = mult
            changed += 1
    return changed
