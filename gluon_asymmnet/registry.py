"""The flat registry of the models: one :class:`ModelSpec` entry each, with its vocabulary as data.

Each name has a :class:`ModelSpec` (timm's registry entry with its
``pretrained_cfg``): the builder, the constructor arguments it takes (read
from the builder's signature, with their types and defaults; ``fixed``
arguments are set by the name), and the preprocessing its weights expect
(:class:`~gluon_asymmnet.preprocessing.PreprocessConfig`), which a store
entry of ``pretrained.json`` may refine. Adding a model is its module and
one entry in :data:`_MODELS`. An alias (:meth:`ModelSpec.alias`: GluonCV's
``mobilenetv2_0.5``) is accepted by name but not listed.

The downstream models (:mod:`gluon_asymmnet.downstream`: ``mobile_pose_*``,
``center_net_*_duc_*``, ``yolo3_*``) are entries too
(:mod:`gluon_asymmnet.downstream_models`), with their :attr:`ModelSpec.task`
(``'pose'``, ``'detection'``); :func:`get_model_list` lists them by task. The registry sits
below the model store (which builds an entry's model to bound its download)
and :mod:`gluon_asymmnet.model_zoo` (``get_model``, weights included).
"""
import dataclasses
import inspect
from collections import OrderedDict, namedtuple
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Callable, Mapping, Optional

from .asymmnet import (NETWORK_ARGUMENTS, asymmnet_large, asymmnet_small, check_network_args, mobilenetv3_large,
                       mobilenetv3_small)
from .downstream_models import ENTRIES as DOWNSTREAM
from .mobilenetv2 import mobilenetv2, mobilenetv2_asymm
from .preprocessing import IMAGENET, PreprocessConfig

__all__ = ['Argument', 'ModelSpec', 'BLOCK_ARGUMENTS', 'TASKS', 'get_model_list', 'get_model_spec']

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
    widths : tuple of float
        The widths of the paper's and GluonCV's tables: with ``without_reuse``,
        the rows of ``eval.py --summary``'s grid (at asymmrate 0, 1 and 2).
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
    widths: tuple = ()
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


# The widths of the paper's tables (counts.csv) and of GluonCV's MobileNetV2 files.
_PAPER_WIDTHS = (1.0, 0.75, 0.5, 0.35)
_V2_WIDTHS = (1.0, 0.75, 0.5, 0.25)
_MOBILENETV2 = ModelSpec('mobilenetv2', mobilenetv2, IMAGENET, widths=_V2_WIDTHS,
                         about='MobileNetV2 (Sandler et al., CVPR 2018): GluonCV\'s network')
_MODELS = _registry(
    ModelSpec('asymmnet_large', asymmnet_large, IMAGENET, without_reuse='mobilenetv3_large', widths=_PAPER_WIDTHS,
              about='AsymmNet-Large (Yang, Shen, Zhao, CVPR 2021 Workshops): the authors\' network'),
    ModelSpec('asymmnet_small', asymmnet_small, IMAGENET, without_reuse='mobilenetv3_small', widths=_PAPER_WIDTHS,
              about='AsymmNet-Small (Yang, Shen, Zhao, CVPR 2021 Workshops): the authors\' network'),
    ModelSpec('mobilenetv3_large', mobilenetv3_large, IMAGENET,
              about='MobileNetV3-Large (Howard et al., ICCV 2019): GluonCV\'s network'),
    ModelSpec('mobilenetv3_small', mobilenetv3_small, IMAGENET,
              about='MobileNetV3-Small (Howard et al., ICCV 2019): GluonCV\'s network'),
    _MOBILENETV2,
    ModelSpec('mobilenetv2_asymm', mobilenetv2_asymm, IMAGENET, without_reuse='mobilenetv2', widths=_V2_WIDTHS,
              about='MobileNetV2 with asymmetrical bottlenecks (Yang, Shen, Zhao, CVPR 2021 Workshops): the '
                    'authors\' get_mobilenetv2_asymm'),
    # GluonCV's names for its published widths.
    *(_MOBILENETV2.alias('mobilenetv2_%s' % w, multiplier=float(w)) for w in ('1.0', '0.75', '0.5', '0.25')),
    # GluonCV's pose and detection models over these backbones.
    *(ModelSpec(e.name, e.builder, IMAGENET, about=e.about, task=e.task) for e in DOWNSTREAM),
)
TASKS = ('classification', 'pose', 'detection')

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
