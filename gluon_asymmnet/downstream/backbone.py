"""The backbone of a downstream model: built, given its ImageNet weights, and cut into the parts a head takes.

A downstream model keeps its backbone's layers up to the last 1x1
convolution before global pooling (with its BatchNorm and activation:
GluonCV's ``features[:-4]`` of MobileNetV3, ``features[:-1]`` of MobileNetV2)
and, for YOLOv3, splits them into the stages that end at strides 8, 16 and 32
(:func:`split_at_strides`, the layers :class:`~gluon_asymmnet.FeatureExtractor`
hands out). The parts are the network's own blocks, so loading weights into
the network before cutting fills the parts.

``pretrained_base`` (:func:`build_backbone`):

- ``False``: parameters left uninitialized;
- ``True``: the backbone's ImageNet weights from the model store (the
  released AsymmNet-L 1.0, GluonCV's MobileNetV3-L/S and MobileNetV2 1.0), or
  the file given by :func:`set_backbone_params` / :func:`backbone_params`
  (what ``python -m gluon_asymmnet.with_gluoncv --backbone-params FILE``
  uses); where nothing is published (AsymmNet-S, other widths, feature-reuse
  options) it is refused with one line naming those two ways to give a file;
- a path: that file (a ``train_imagenet.py`` checkpoint, the released file,
  a GluonCV file, any layout :func:`gluon_asymmnet.load_checkpoint` reads);
  the classifier (``output.*``) is dropped and every other key must fit.
"""
import contextlib
import os

from mxnet.gluon import nn

from ..checkpoint import CheckpointError, load_checkpoint
from ..downstream_models import BACKBONES, backbone_arguments
from ..features import layer_strides
from ..finetune import CLASSIFIER

__all__ = ['BACKBONES', 'BackboneError', 'set_backbone_params', 'current_backbone_params', 'backbone_params',
           'backbone_arguments', 'build_backbone', 'features_before_pool', 'sequential', 'split_at_strides']

_OVERRIDE = []


class BackboneError(ValueError):
    """``pretrained_base`` cannot be honoured (nothing published for this backbone, a file that does not fit)."""


def set_backbone_params(path):
    """Make every later ``pretrained_base=True`` load ``path`` (None: the model store again), process-wide.

    For users who cannot pass ``pretrained_base`` themselves: GluonCV's
    scripts pass ``pretrained_base=True``, and ``python -m
    gluon_asymmnet.with_gluoncv --backbone-params FILE`` calls this with FILE.
    The file is checked when a model is built (it must fit that backbone).
    """
    if path is not None:
        path = os.path.expanduser(os.fspath(path))
        if not os.path.isfile(path):
            raise BackboneError('backbone parameters %s: no such file' % path)
    _OVERRIDE[:] = [path] if path is not None else []


def current_backbone_params():
    """The file :func:`set_backbone_params` set, or None."""
    return _OVERRIDE[0] if _OVERRIDE else None


@contextlib.contextmanager
def backbone_params(path):
    """:func:`set_backbone_params` for the duration of a ``with`` block, then the previous setting."""
    saved = list(_OVERRIDE)
    set_backbone_params(path)
    try:
        yield
    finally:
        _OVERRIDE[:] = saved


def build_backbone(backbone, pretrained_base=False, ctx=None, root=None, norm_layer=None, norm_kwargs=None,
                   **options):
    """The classification network of ``backbone`` with its ImageNet weights as ``pretrained_base`` says.

    Parameters
    ----------
    backbone : str
        A key of :data:`BACKBONES`.
    pretrained_base : bool or str
        See the module notes.
    ctx : Context or list of Context, optional
        Where loaded parameters live.
    root : str, optional
        The model store folder (default ``~/.mxnet/models`` or ``$MXNET_HOME/models``).
    norm_layer, norm_kwargs : optional
        The normalization layer of every unit (:func:`gluon_asymmnet.block.norm`).
    **options
        ``multiplier``, ``asymmrate``, ``shuffle_groups``, ``corrected_first_block``
        (as the backbone takes them).

    Raises
    ------
    BackboneError
        Nothing published for ``pretrained_base=True``, or a file that does not fit.
    """
    builder, store_name, fixed, _ = BACKBONES[backbone]
    if norm_layer is not None and not (isinstance(norm_layer, type) and issubclass(norm_layer, nn.HybridBlock)):
        raise ValueError('norm_layer must be a normalization layer class (nn.BatchNorm, '
                         'mx.gluon.contrib.nn.SyncBatchNorm), got %r' % (norm_layer,))
    if norm_kwargs is not None and not isinstance(norm_kwargs, dict):
        raise ValueError('norm_kwargs must be a dict of the norm layer\'s arguments, got %r' % (norm_kwargs,))
    if isinstance(ctx, (list, tuple)) and not ctx:
        ctx = None
    net = builder(**dict(options, **fixed), norm_layer=norm_layer, norm_kwargs=norm_kwargs)
    if pretrained_base is False or pretrained_base is None:
        return net
    path = pretrained_base
    if pretrained_base is True:
        path = current_backbone_params() or _store_file(backbone, store_name, dict(options, **fixed), root)
    elif not isinstance(pretrained_base, (str, os.PathLike)):
        raise BackboneError('pretrained_base must be False, True or a parameter file, got %r' % (pretrained_base,))
    path = os.path.expanduser(os.fspath(path))
    if not os.path.isfile(path):
        raise BackboneError('pretrained_base=%r: no such parameter file' % (pretrained_base,))
    try:
        load_checkpoint(net, path, ctx=ctx, exclude=CLASSIFIER)
    except CheckpointError as err:
        raise BackboneError('backbone %s: %s' % (backbone, err)) from None
    return net


def _store_file(backbone, store_name, config, root):
    from ..model_store import DEFAULT_ROOT, find_entry, get_model_file
    from ..registry import get_model_spec
    config = dict(get_model_spec(store_name).defaults(), **config)
    config.pop('classes', None)
    try:
        entry = find_entry(store_name, config, ignore=('classes', 'dropout'))
    except ValueError:
        given = ', '.join('%s=%r' % kv for kv in sorted(config.items()) if kv[0] not in ('dropout',))
        raise BackboneError(
            'no published ImageNet weights for the backbone %s(%s): pass pretrained_base=FILE (a train_imagenet.py '
            'checkpoint or any file load_checkpoint reads), pretrained_base=False, or set a file for '
            'pretrained_base=True with gluon_asymmnet.downstream.set_backbone_params(FILE) (python -m '
            'gluon_asymmnet.with_gluoncv --backbone-params FILE)' % (backbone, given)) from None
    for k, default in (('corrected_first_block', False),):
        if config.get(k, default) != entry.kwargs.get(k, default):
            raise BackboneError('no published ImageNet weights for the backbone %s with %s=%r: pass '
                                'pretrained_base=FILE or use set_backbone_params(FILE)' % (backbone, k, config[k]))
    return get_model_file(entry, root=root or DEFAULT_ROOT)


def features_before_pool(net):
    """``net.features``' layers before global pooling: up to the last 1x1 conv, its norm and activation."""
    layers = list(net.features)
    pool = [i for i, layer in enumerate(layers) if isinstance(layer, nn.GlobalAvgPool2D)][0]
    return layers[:pool]


def sequential(layers):
    """A HybridSequential of existing layers (shared, not copied), named 0, 1, ... as GluonCV's slices."""
    seq = nn.HybridSequential(prefix='')
    for layer in layers:
        seq.add(layer)
    return seq


def split_at_strides(net, strides=(8, 16, 32)):
    """The layers before pooling cut into stages ending at the last layer of each stride.

    The first stage starts at the stem; the last ends at the head's 1x1
    conv + norm + activation (stride 32), as GluonCV splits MobileNet for
    YOLOv3 (``features[:33]``, ``[33:69]``, ``[69:-2]``).

    Returns
    -------
    list of HybridSequential
    """
    per_layer = layer_strides(net)
    layers = features_before_pool(net)
    ends = []
    for s in strides:
        found = [i for i, (stride, _) in enumerate(per_layer[:len(layers)]) if stride == s]
        if not found:
            raise ValueError('%s has no layer at stride %d' % (type(net).__name__, s))
        ends.append(found[-1] + 1)
    starts = [0] + ends[:-1]
    return [sequential(layers[a:b]) for a, b in zip(starts, ends)]
