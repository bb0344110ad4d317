"""``get_model`` in GluonCV's manner over the flat registry (:mod:`gluon_asymmnet.registry`), weights included.

:func:`get_model` builds a registered model (refusing arguments it does not
take; the command lines' model flags map onto them,
:mod:`gluon_asymmnet.model_flags`) and loads published weights from the
model store or a parameter file of any layout. The registry's names
(:class:`ModelSpec`, :func:`get_model_spec`, :func:`get_model_list`) are
available here too. Adding a model is its module and one entry in
:data:`gluon_asymmnet.registry._MODELS`.
"""
import os
import re

from .checkpoint import load_checkpoint
from .features import FeatureExtractor
from .files import not_a_file
from .finetune import load_pretrained
from .model_store import DEFAULT_ROOT, find_entry, get_model_file
from .registry import BLOCK_ARGUMENTS, TASKS, Argument, ModelSpec, get_model_list, get_model_spec

__all__ = ['Argument', 'ModelSpec', 'BLOCK_ARGUMENTS', 'TASKS', 'get_feature_extractor', 'get_model',
           'get_model_list', 'get_model_spec', 'get_preprocess', 'pretrained_entry']

# Network attributes a store entry's constructor arguments are compared with; an entry
# without ``corrected_first_block`` holds weights of the original network.
_CONFIG_DEFAULTS = {'corrected_first_block': False}


def get_model(name, pretrained=False, ctx=None, root=DEFAULT_ROOT, strict=False, **kwargs):
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
        The model's constructor arguments (:attr:`ModelSpec.arguments`;
        ``asymmnet_*``: ``multiplier``, ``asymmrate``, ``shuffle_groups``,
        ``classes``, ``dropout``, ``corrected_first_block``; ``mobilenetv3_*``
        the same but ``asymmrate`` and ``shuffle_groups``;
        ``mobilenetv2_asymm``: ``multiplier``, ``asymmrate``,
        ``shuffle_groups``, ``classes``, ``dropout``; ``mobilenetv2`` the
        same but ``asymmrate`` and ``shuffle_groups``; see
        :class:`gluon_asymmnet.AsymmNet` and
        :class:`gluon_asymmnet.mobilenetv2.MobileNetV2`).

    Returns
    -------
    AsymmNet or MobileNetV2
        With ``preprocess_config``, the
        :class:`~gluon_asymmnet.preprocessing.PreprocessConfig` its weights
        expect (the model's, refined by the store entry it was loaded from).

    Raises
    ------
    ValueError
        Unknown name, an argument the model does not take (naming the model
        and the arguments it takes), an invalid configuration, or no store
        entry for this configuration or hash.
    gluon_asymmnet.CheckpointError
        The file does not fit the network.
    gluon_asymmnet.model_store.ModelStoreError
        The store file is missing and cannot be fetched (offline), or does
        not have its published hash.
    """
    spec = get_model_spec(name)
    if pretrained not in (False, None) and 'pretrained_base' in spec.arguments:
        # GluonCV's rule: the model's own weights replace the backbone's.
        kwargs['pretrained_base'] = False
    net = spec.build(**kwargs)
    if pretrained is False or pretrained is None:
        return net
    # Another class count than the weights': the classifier starts anew (fine-tuning).
    adapt = 'classes' in kwargs and not strict
    if isinstance(pretrained, (str, os.PathLike)) and os.path.isfile(os.path.expanduser(os.fspath(pretrained))):
        _load(net, os.path.expanduser(os.fspath(pretrained)), ctx, None, adapt)
        return net
    entry = pretrained_entry(spec.name, pretrained, ignore=('classes',) if adapt else (), **kwargs)
    _load(net, get_model_file(entry, root=root), ctx, entry.layout, adapt)
    net.preprocess_config = spec.preprocess.replace(**entry.preprocess)
    return net


def get_feature_extractor(name, strides=(4, 8, 16, 32), **kwargs):
    """Build a model by name and wrap it in a :class:`FeatureExtractor` (timm's ``features_only``).

    Parameters
    ----------
    name : str
        A name from :func:`gluon_asymmnet.get_model_list`.
    strides : tuple of int
        Output strides to return.
    **kwargs
        Passed to :func:`gluon_asymmnet.get_model` (``multiplier``,
        ``asymmrate``, ``pretrained``...).

    Returns
    -------
    FeatureExtractor
    """
    return FeatureExtractor(get_model(name, **kwargs), strides)


def pretrained_entry(name, pretrained=True, ignore=(), **kwargs):
    """The store entry ``get_model(name, pretrained, **kwargs)`` loads.

    Parameters
    ----------
    name : str
    pretrained : True or str
        ``True``: the entry for this configuration; a string: the entry
        whose hash starts with it (4 to 40 hex digits).
    ignore : sequence of str
        Arguments not compared (``classes`` when fine-tuning on other classes).
    **kwargs
        Constructor arguments; those not given count at the model's defaults.

    Returns
    -------
    gluon_asymmnet.model_store.StoreEntry

    Raises
    ------
    ValueError
        Unknown model or argument, a ``pretrained`` that is neither, or no
        entry (listing the published ones).
    """
    spec = get_model_spec(name)
    config = spec.config(kwargs)
    if pretrained is True:
        tag = None
    elif isinstance(pretrained, (str, os.PathLike)) and re.fullmatch('[0-9a-fA-F]{4,40}', os.fspath(pretrained)):
        tag = os.fspath(pretrained)
    elif isinstance(pretrained, (str, os.PathLike)):
        what = not_a_file(os.path.expanduser(os.fspath(pretrained)))
        if what != 'does not exist':
            raise ValueError('pretrained=%r %s, not a parameter file' % (pretrained, what))
        raise ValueError('pretrained=%r: no such parameter file, and not a hash prefix (4 to 40 hex '
                         'digits) of a store entry' % (pretrained,))
    else:
        raise ValueError('pretrained must be False, True, a file path or a hash prefix, got %r' % (pretrained,))
    entry = find_entry(spec.alias_of or spec.name, config, tag=tag, ignore=ignore)
    # Counted at their defaults where the entry does not list them.
    for k, default in _CONFIG_DEFAULTS.items():
        if k in config and entry.kwargs.get(k, default) != config[k]:
            raise ValueError('no pretrained weights for %s with %s=%r: %s was published with %s=%r'
                             % (spec.name, k, config[k], entry.describe(), k, entry.kwargs.get(k, default)))
    return entry


def get_preprocess(name, pretrained=False, **kwargs):
    """The :class:`~gluon_asymmnet.preprocessing.PreprocessConfig` ``get_model(name, pretrained, **kwargs)`` sets.

    The model's, refined by its store entry when ``pretrained`` is ``True``
    or a hash prefix; with no such entry (or a file), the model's (loading
    the weights reports what is missing).
    """
    spec = get_model_spec(name)
    if pretrained is True or (isinstance(pretrained, str) and not os.path.isfile(os.path.expanduser(pretrained))):
        try:
            return spec.preprocess.replace(**pretrained_entry(spec.name, pretrained, **kwargs).preprocess)
        except ValueError:
            pass
    return spec.preprocess


def _load(net, path, ctx, layout, adapt):
    if adapt:
        load_pretrained(net, path, ctx=ctx, layout=layout)
    else:
        load_checkpoint(net, path, ctx=ctx, layout=layout)
