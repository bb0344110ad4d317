"""A flat registry of the models, in GluonCV's ``get_model`` manner."""
import os
import re

from .asymmnet import asymmnet_large, asymmnet_small, mobilenetv3_large, mobilenetv3_small
from .checkpoint import load_checkpoint
from .finetune import load_pretrained
from .model_store import DEFAULT_ROOT, find_entry, get_model_file

__all__ = ['get_model', 'get_model_list']

_MODELS = {
    'asymmnet_large': asymmnet_large,
    'asymmnet_small': asymmnet_small,
    'mobilenetv3_large': mobilenetv3_large,
    'mobilenetv3_small': mobilenetv3_small,
}

# Network attributes a store entry's constructor arguments are compared with; an entry
# without ``corrected_first_block`` holds weights of the original network.
_CONFIG = ('multiplier', 'asymmrate', 'shuffle_groups', 'classes', 'corrected_first_block')
_CONFIG_DEFAULTS = {'corrected_first_block': False}


def get_model_list():
    """Names accepted by :func:`get_model`."""
    return sorted(_MODELS)


def get_model(name, pretrained=False, ctx=None, root=DEFAULT_ROOT, strict=False, **kwargs):
    """Build a model by name, optionally with published or local weights.

    Parameters
    ----------
    name : str
        One of :func:`get_model_list`.
    pretrained : bool or str
        ``False``: parameters left uninitialized. ``True``: the store entry
        for this model and configuration (see
        :func:`gluon_asymmnet.model_store.pretrained_entries`), downloaded
        into ``root`` when missing and verified by hash. A string: a
        parameter file of any layout :func:`gluon_asymmnet.load_checkpoint`
        reads, or else a prefix (4 to 40 hex digits) of a store entry's hash.
        With ``classes`` given, the weights may come from a network with
        another class count (e.g. the 1000 ImageNet classes): everything but
        the classifier is loaded and a new classifier is initialised
        (:func:`gluon_asymmnet.finetune.load_pretrained`; a log line says
        so), as timm does. Without ``classes``, or with ``strict``, the file
        must fit entirely.
    ctx : Context or list of Context, optional
        Where loaded parameters live (default: CPU). Ignored without
        ``pretrained``.
    root : str
        The store folder, ``~/.mxnet/models`` by default; when left at the
        default and ``MXNET_HOME`` is set, ``$MXNET_HOME/models`` (as GluonCV).
    strict : bool
        Never start a new classifier (evaluation and export use this).
    **kwargs
        Passed to the model's constructor (``multiplier``, ``asymmrate``,
        ``shuffle_groups``, ``classes``, ``dropout``, ``corrected_first_block``;
        see :class:`gluon_asymmnet.AsymmNet`).

    Returns
    -------
    AsymmNet

    Raises
    ------
    ValueError
        Unknown name, or no store entry for this configuration or hash.
    gluon_asymmnet.CheckpointError
        The file does not fit the network.
    gluon_asymmnet.model_store.ModelStoreError
        The store file is missing and cannot be fetched (offline), or does
        not have its published hash.
    """
    key = name.lower()
    if key not in _MODELS:
        raise ValueError('unknown model %r; valid names: %s' % (name, ', '.join(get_model_list())))
    net = _MODELS[key](**kwargs)
    if pretrained is False or pretrained is None:
        return net
    config = {k: getattr(net, k) for k in _CONFIG if hasattr(net, k)}
    # Another class count than the weights': the classifier starts anew (fine-tuning).
    adapt = 'classes' in kwargs and not strict
    ignore = ('classes',) if adapt else ()
    if pretrained is True:
        entry = _find_entry(key, config, ignore=ignore)
    elif isinstance(pretrained, (str, os.PathLike)):
        path = os.path.expanduser(os.fspath(pretrained))
        if os.path.isfile(path):
            _load(net, path, ctx, None, adapt)
            return net
        if not re.fullmatch('[0-9a-fA-F]{4,40}', path):
            raise ValueError('pretrained=%r: no such parameter file, and not a hash prefix (4 to 40 hex '
                             'digits) of a store entry' % (pretrained,))
        entry = _find_entry(key, config, tag=path, ignore=ignore)
    else:
        raise ValueError('pretrained must be False, True, a file path or a hash prefix, got %r' % (pretrained,))
    _load(net, get_model_file(entry, root=root), ctx, entry.layout, adapt)
    return net


def _find_entry(model, config, tag=None, ignore=()):
    """The store entry for this configuration, counting absent entry arguments at their defaults."""
    entry = find_entry(model, config, tag=tag, ignore=ignore)
    for k, default in _CONFIG_DEFAULTS.items():
        if k in config and entry.kwargs.get(k, default) != config[k]:
            raise ValueError('no pretrained weights for %s with %s=%r: %s was published with %s=%r'
                             % (model, k, config[k], entry.describe(), k, entry.kwargs.get(k, default)))
    return entry


def _load(net, path, ctx, layout, adapt):
    if adapt:
        load_pretrained(net, path, ctx=ctx, layout=layout)
    else:
        load_checkpoint(net, path, ctx=ctx, layout=layout)
