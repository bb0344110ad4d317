"""A flat registry of the models, in GluonCV's ``get_model`` manner."""
import os
import re

from .asymmnet import asymmnet_large, asymmnet_small, mobilenetv3_large, mobilenetv3_small
from .checkpoint import load_checkpoint
from .mobilenetv2 import mobilenetv2, mobilenetv2_asymm
from .model_store import DEFAULT_ROOT, find_entry, get_model_file

__all__ = ['get_model', 'get_model_list', 'takes_feature_reuse']

_MODELS = {
    'asymmnet_large': asymmnet_large,
    'asymmnet_small': asymmnet_small,
    'mobilenetv3_large': mobilenetv3_large,
    'mobilenetv3_small': mobilenetv3_small,
    'mobilenetv2': mobilenetv2,
    'mobilenetv2_asymm': mobilenetv2_asymm,
}

# GluonCV's names for its published widths: name -> (model, fixed constructor arguments).
_ALIASES = {'mobilenetv2_%s' % w: ('mobilenetv2', {'multiplier': float(w)}) for w in ('1.0', '0.75', '0.5', '0.25')}
# A model without feature reuse -> the model that adds it (and takes asymmrate, shuffle_groups).
_WITH_REUSE = {'mobilenetv3_large': 'asymmnet_large', 'mobilenetv3_small': 'asymmnet_small',
               'mobilenetv2': 'mobilenetv2_asymm'}
_REUSE_ARGS = ('asymmrate', 'shuffle_groups')

# Network attributes a store entry's constructor arguments are compared with; an entry
# without ``corrected_first_block`` holds weights of the original network.
_CONFIG = ('multiplier', 'asymmrate', 'shuffle_groups', 'classes', 'corrected_first_block')
_CONFIG_DEFAULTS = {'corrected_first_block': False}


def get_model_list():
    """The models :func:`get_model` builds, one name each (GluonCV's ``mobilenetv2_<width>`` names are
    accepted too: ``mobilenetv2`` at that width)."""
    return sorted(_MODELS)


def takes_feature_reuse(name):
    """Whether model ``name`` takes ``asymmrate`` and ``shuffle_groups`` (MobileNetV2/V3 do not)."""
    return _ALIASES.get(name, (name,))[0] in _WITH_REUSE.values()


def get_model(name, pretrained=False, ctx=None, root=DEFAULT_ROOT, **kwargs):
    """Build a model by name, optionally with published or local weights.

    Parameters
    ----------
    name : str
        One of :func:`get_model_list`; GluonCV's ``mobilenetv2_1.0``,
        ``mobilenetv2_0.75``, ``mobilenetv2_0.5``, ``mobilenetv2_0.25`` are
        ``mobilenetv2`` at that ``multiplier``.
    pretrained : bool or str
        ``False``: parameters left uninitialized. ``True``: the store entry
        for this model and configuration (see
        :func:`gluon_asymmnet.model_store.pretrained_entries`), downloaded
        into ``root`` when missing and verified by hash. A string: a
        parameter file of any layout :func:`gluon_asymmnet.load_checkpoint`
        reads, or else a prefix (4 to 40 hex digits) of a store entry's hash.
    ctx : Context or list of Context, optional
        Where loaded parameters live (default: CPU). Ignored without
        ``pretrained``.
    root : str
        The store folder, ``~/.mxnet/models`` by default; when left at the
        default and ``MXNET_HOME`` is set, ``$MXNET_HOME/models`` (as GluonCV).
    **kwargs
        Passed to the model's constructor (``multiplier``, ``asymmrate``,
        ``shuffle_groups``, ``classes``, ``dropout``, ``corrected_first_block``;
        see :class:`gluon_asymmnet.AsymmNet` and
        :class:`gluon_asymmnet.mobilenetv2.MobileNetV2`).

    Returns
    -------
    AsymmNet or MobileNetV2

    Raises
    ------
    ValueError
        Unknown name, an argument the model does not take, an invalid
        configuration, or no store entry for this configuration or hash.
    gluon_asymmnet.CheckpointError
        The file does not fit the network.
    gluon_asymmnet.model_store.ModelStoreError
        The store file is missing and cannot be fetched (offline), or does
        not have its published hash.
    """
    key = name.lower()
    if key in _ALIASES:
        key, fixed = _ALIASES[key]
        for k, v in fixed.items():
            if kwargs.get(k, v) != v:
                raise ValueError('%s is %s with %s=%r; got %s=%r (use get_model(%r, %s=...))'
                                 % (name, key, k, v, k, kwargs[k], key, k))
        kwargs = dict(kwargs, **fixed)
    if key not in _MODELS:
        raise ValueError('unknown model %r; valid names: %s (and GluonCV\'s %s)'
                         % (name, ', '.join(get_model_list()), ', '.join(_ALIASES)))
    refused = [k for k in _REUSE_ARGS if k in kwargs and key in _WITH_REUSE]
    if refused:
        raise ValueError('%s takes no %s: it has no feature reuse (%s is the same network with it)'
                         % (name, refused[0], _WITH_REUSE[key]))
    net = _MODELS[key](**kwargs)
    if pretrained is False or pretrained is None:
        return net
    config = {k: getattr(net, k) for k in _CONFIG if hasattr(net, k)}
    if pretrained is True:
        entry = _find_entry(key, config)
    elif isinstance(pretrained, (str, os.PathLike)):
        path = os.path.expanduser(os.fspath(pretrained))
        if os.path.isfile(path):
            load_checkpoint(net, path, ctx=ctx)
            return net
        if not re.fullmatch('[0-9a-fA-F]{4,40}', path):
            raise ValueError('pretrained=%r: no such parameter file, and not a hash prefix (4 to 40 hex '
                             'digits) of a store entry' % (pretrained,))
        entry = _find_entry(key, config, tag=path)
    else:
        raise ValueError('pretrained must be False, True, a file path or a hash prefix, got %r' % (pretrained,))
    load_checkpoint(net, get_model_file(entry, root=root), ctx=ctx, layout=entry.layout)
    return net


def _find_entry(model, config, tag=None):
    """The store entry for this configuration, counting absent entry arguments at their defaults."""
    entry = find_entry(model, config, tag=tag)
    for k, default in _CONFIG_DEFAULTS.items():
        if k in config and entry.kwargs.get(k, default) != config[k]:
            raise ValueError('no pretrained weights for %s with %s=%r: %s was published with %s=%r'
                             % (model, k, config[k], entry.describe(), k, entry.kwargs.get(k, default)))
    return entry
