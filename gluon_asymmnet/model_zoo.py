"""A flat registry of the models, in GluonCV's ``get_model`` manner, with each model's vocabulary as data.

Each name has a :class:`ModelSpec` (timm's registry entry with its
``pretrained_cfg``): the builder, the constructor arguments it takes (read
from the builder's signature, with their types and defaults; ``fixed``
arguments are set by the name), and the preprocessing its weights expect
(:class:`~gluon_asymmnet.preprocessing.PreprocessConfig`), which a store
entry of ``pretrained.json`` may refine. :func:`get_model` refuses arguments
a model does not take; the command lines' model flags map onto these
arguments (:mod:`gluon_asymmnet.model_flags`). Adding a model is one entry in
:data:`_MODELS`. An alias (:meth:`ModelSpec.alias`: GluonCV's
``mobilenetv2_0.5``) is accepted by name but not listed.

The downstream models (:mod:`gluon_asymmnet.downstream`: ``mobile_pose_*``,
``center_net_*_duc_*``, ``yolo3_*``) are entries too, with their
:attr:`ModelSpec.task` (``'pose'``, ``'detection'``); :func:`get_model_list`
lists them by task.
"""
import dataclasses
import inspect
import os
import re
from collections import OrderedDict, namedtuple
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Callable, Mapping, Optional

from .asymmnet import (NETWORK_ARGUMENTS, asymmnet_large, asymmnet_small, check_network_args, mobilenetv3_large,
                       mobilenetv3_small)
from .checkpoint import load_checkpoint
from .files import not_a_file
from .finetune import load_pretrained
from .mobilenetv2 import mobilenetv2, mobilenetv2_asymm
from .downstream.registry import ENTRIES as DOWNSTREAM
from .model_store import DEFAULT_ROOT, find_entry, get_model_file
from .preprocessing import IMAGENET, PreprocessConfig

__all__ = ['Argument', 'ModelSpec', 'get_model', 'get_model_list', 'get_model_spec', 'get_preprocess',
           'pretrained_entry']

# Arguments of every Gluon block (GluonCV's get_model passes them through too).
BLOCK_ARGUMENTS = ('prefix', 'params')

Argument = namedtuple('Argument', 'name type default')
Argument.__doc__ = """A constructor argument of a model: its name, type (that of its default) and default."""


@dataclass(frozen=True)
class ModelSpec:
    """One registry entry: a model name, how to build it, what it takes, what input it expects.

    Attributes
    ----------
    name : str
    builder : callable
        Returns the network; its keyword arguments with defaults (not
        ``**kwargs``) are the model's constructor arguments.
    preprocess : PreprocessConfig
        The input its weights expect (:data:`~gluon_asymmnet.preprocessing.IMAGENET`).
    fixed : mapping
        Builder arguments the name sets (e.g. a width in the name); not
        arguments of the model, though passing a fixed value is accepted.
    without_reuse : str, optional
        The model this one equals at ``asymmrate`` 0 (AsymmNet's: at
        multipliers up to 1.0): its published figures are listed beside this
        one's, and a feature-reuse argument it refuses names this model.
    about : str
        One line: what the network is, with its paper.
    alias_of : str, optional
        The listed model this name is, at its ``fixed`` arguments
        (:meth:`alias`): not in :func:`get_model_list`, and its store
        entries are that model's.
    task : str
        ``'classification'``, ``'pose'`` or ``'detection'`` (:data:`TASKS`).
    """
    name: str
    builder: Callable
    preprocess: PreprocessConfig = IMAGENET
    fixed: Mapping = field(default_factory=dict)
    without_reuse: Optional[str] = None
    about: str = ''
    alias_of: Optional[str] = None
    task: str = 'classification'

    def __post_init__(self):
        object.__setattr__(self, 'fixed', MappingProxyType(dict(self.fixed)))
        arguments = OrderedDict()
        for p in inspect.signature(self.builder).parameters.values():
            if p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL) or p.name in self.fixed:
                continue
            if p.default is p.empty or p.default is None:
                raise TypeError('model %s: builder argument %s needs a default that is not None (its type is read '
                                'from it)' % (self.name, p.name))
            arguments[p.name] = Argument(p.name, type(p.default), p.default)
        object.__setattr__(self, 'arguments', MappingProxyType(arguments))

    def defaults(self):
        """The constructor arguments at their defaults, fixed ones included (name -> value)."""
        return dict({a.name: a.default for a in self.arguments.values()}, **self.fixed)

    def alias(self, name, **fixed):
        """This model under another name that fixes some arguments (GluonCV's ``mobilenetv2_0.5``)."""
        fixed = dict(self.fixed, **fixed)
        return dataclasses.replace(self, name=name, fixed=fixed, alias_of=self.name, about='%s with %s' % (
            self.name, ', '.join('%s=%r' % kv for kv in fixed.items())))

    def check(self, kwargs):
        """Refuse what the model does not take: ``ValueError`` naming the model and the arguments it takes.

        Values no network accepts (``multiplier=inf``, ``asymmrate=nan``) are refused naming the argument.
        """
        for name, value in kwargs.items():
            if name in self.fixed and value != self.fixed[name]:
                raise ValueError('%s %s %s=%r by its name, got %s=%r; it takes %s'
                                 % (self.name, 'is %s with' % self.alias_of if self.alias_of else 'has', name,
                                    self.fixed[name], name, value, self.describe_arguments()))
            if name not in self.arguments and name not in self.fixed and name not in BLOCK_ARGUMENTS:
                raise ValueError('%s takes no %s; it takes %s%s'
                                 % (self.name, name, self.describe_arguments(), self.with_reuse_note(name)))
        check_network_args(**{k: v for k, v in kwargs.items() if k in NETWORK_ARGUMENTS})

    def with_reuse_note(self, argument):
        """``'; mobilenetv2_asymm adds feature reuse'`` when the model with this one's feature reuse takes
        ``argument``, else ``''``: the end of a refusal."""
        plain = self.alias_of or self.name
        for spec in _MODELS.values():
            if spec.without_reuse == plain and argument in spec.arguments:
                return '; %s adds feature reuse' % spec.name
        return ''

    def describe_arguments(self):
        """``multiplier=1.0, classes=1000, ...``: the arguments with their defaults."""
        return ', '.join('%s=%r' % (a.name, a.default) for a in self.arguments.values())

    def config(self, kwargs=None):
        """The network's configuration for ``kwargs``: defaults, fixed values and ``kwargs`` (checked)."""
        kwargs = dict(kwargs or {})
        self.check(kwargs)
        return dict(self.defaults(), **{k: v for k, v in kwargs.items() if k not in BLOCK_ARGUMENTS})

    def build(self, **kwargs):
        """The network for ``kwargs`` (checked), with the expected input as ``net.preprocess_config``."""
        self.check(kwargs)
        net = self.builder(**dict(kwargs, **self.fixed))
        net.preprocess_config = self.preprocess
        return net


def _registry(*specs):
    return MappingProxyType(OrderedDict((s.name, s) for s in specs))


_MOBILENETV2 = ModelSpec('mobilenetv2', mobilenetv2, IMAGENET,
                         about='MobileNetV2 (Sandler et al., CVPR 2018): GluonCV\'s network')
_MODELS = _registry(
    ModelSpec('asymmnet_large', asymmnet_large, IMAGENET, without_reuse='mobilenetv3_large',
              about='AsymmNet-Large (Yang, Shen, Zhao, CVPR 2021 Workshops): the authors\' network'),
    ModelSpec('asymmnet_small', asymmnet_small, IMAGENET, without_reuse='mobilenetv3_small',
              about='AsymmNet-Small (Yang, Shen, Zhao, CVPR 2021 Workshops): the authors\' network'),
    ModelSpec('mobilenetv3_large', mobilenetv3_large, IMAGENET,
              about='MobileNetV3-Large (Howard et al., ICCV 2019): GluonCV\'s network'),
    ModelSpec('mobilenetv3_small', mobilenetv3_small, IMAGENET,
              about='MobileNetV3-Small (Howard et al., ICCV 2019): GluonCV\'s network'),
    _MOBILENETV2,
    ModelSpec('mobilenetv2_asymm', mobilenetv2_asymm, IMAGENET, without_reuse='mobilenetv2',
              about='MobileNetV2 with asymmetrical bottlenecks (Yang, Shen, Zhao, CVPR 2021 Workshops): the '
                    'authors\' get_mobilenetv2_asymm'),
    # GluonCV's names for its published widths.
    *(_MOBILENETV2.alias('mobilenetv2_%s' % w, multiplier=float(w)) for w in ('1.0', '0.75', '0.5', '0.25')),
    # GluonCV's pose and detection models over these backbones.
    *(ModelSpec(e.name, e.builder, IMAGENET, about=e.about, task=e.task) for e in DOWNSTREAM),
)
TASKS = ('classification', 'pose', 'detection')

# Network attributes a store entry's constructor arguments are compared with; an entry
# without ``corrected_first_block`` holds weights of the original network.
_CONFIG_DEFAULTS = {'corrected_first_block': False}


def get_model_list(task='classification'):
    """The models :func:`get_model` builds for ``task`` (one of :data:`TASKS`; None: every task), one name
    each (aliases, GluonCV's ``mobilenetv2_<width>`` names, are accepted too: ``mobilenetv2`` at that width)."""
    if task is not None and task not in TASKS:
        raise ValueError('task must be one of %s or None, got %r' % (', '.join(TASKS), task))
    return sorted(name for name, spec in _MODELS.items()
                  if spec.alias_of is None and task in (None, spec.task))


def get_model_spec(name):
    """The :class:`ModelSpec` of a model name (case-insensitive).

    Raises
    ------
    ValueError
        Unknown name (listing the valid ones).
    """
    key = name.lower() if isinstance(name, str) else name
    if key not in _MODELS:
        aliases = [n for n, spec in _MODELS.items() if spec.alias_of is not None]
        raise ValueError('unknown model %r; valid names: %s%s; pose and detection models: %s' % (
            name, ', '.join(get_model_list()), ' (and the aliases %s)' % ', '.join(aliases) if aliases else '',
            ', '.join(get_model_list('pose') + get_model_list('detection'))))
    return _MODELS[key]


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
