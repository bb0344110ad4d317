"""The model and preprocessing flags of ``train_imagenet.py``, ``eval.py`` and ``python -m gluon_asymmnet.export``.

One definition, one spelling each (the older spelling of another command line
stays as an alias). A flag's value has one name, its ``dest``: the
:class:`~gluon_asymmnet.training.TrainConfig` field and the key a run's
``.json`` records (:mod:`gluon_asymmnet.run_meta`).

=========================  =============================  ====================  ===============================
dest                       flag                           alias                 sets
=========================  =============================  ====================  ===============================
``model``                  ``--model``                                          the model name
``width_scale``            ``--width-scale``              ``--multiplier``      ``multiplier``
``asymmrate``              ``--asymmrate``                                      ``asymmrate``
``shuffle_group``          ``--shuffle-group``            ``--shuffle-groups``  ``shuffle_groups``
``corrected_first_block``  ``--corrected-first-block``                          ``corrected_first_block``
``classes``                ``--classes``                                        ``classes``
``dropout``                ``--dropout`` (training)                             ``dropout``
``input_size``             ``--input-size``                                     preprocessing ``input_size``
``crop_ratio``             ``--crop-ratio`` (not export)                        preprocessing ``crop_ratio``
``rgb_mean``, ``rgb_std``  ``--rgb-mean``, ``--rgb-std``                        preprocessing ``mean``, ``std``
=========================  =============================  ====================  ===============================

Adding a constructor argument to a builder takes the builder and one :data:`FLAGS`
entry here: ``train_imagenet.py`` (a :class:`~gluon_asymmnet.training.TrainConfig`
field), ``eval.py``, the export, the run's record and the resume check take
their flags from :func:`model_dests`, :func:`network_dests` and
:func:`preprocess_dests`, read when those modules are imported.

:func:`model_kwargs` turns the values into ``get_model`` arguments through
the registry (:class:`~gluon_asymmnet.model_zoo.ModelSpec`), refusing a flag
the model does not take in one line; :func:`preprocess_config` applies the
preprocessing flags to a :class:`~gluon_asymmnet.preprocessing.PreprocessConfig`;
:func:`resolve` does both over a checkpoint's record, as ``eval.py`` and the
export read it.
"""
import argparse
import math
from collections import OrderedDict, namedtuple

from .asymmnet import NETWORK_ARGUMENTS, check_network_args
from .model_zoo import get_model_list, get_model_spec, get_preprocess
from .preprocessing import IMAGENET

__all__ = ['Flag', 'FLAGS', 'model_dests', 'network_dests', 'preprocess_dests', 'flag_help', 'add_flags', 'parse_rgb',
           'model_flags_of', 'model_kwargs', 'preprocess_config', 'ModelChoice', 'resolve']

Flag = namedtuple('Flag', 'dest flags argument field type help network', defaults=(True,))
Flag.__doc__ = """A shared flag: value name, spellings (canonical first), the ``get_model`` argument or the
:class:`~gluon_asymmnet.preprocessing.PreprocessConfig` field it sets, value type, help (without the default), and
whether the value fixes the network's parameters (``network``: a checkpoint fits only the value it was trained with;
not so dropout)."""

FLAGS = OrderedDict((f.dest, f) for f in (
    Flag('model', ('--model',), None, None, str, 'model name'),
    Flag('width_scale', ('--width-scale', '--multiplier'), 'multiplier', None, float,
         'width multiplier of every layer but the 1280-wide conv'),
    Flag('asymmrate', ('--asymmrate',), 'asymmrate', None, int, 'feature-reuse rate, 0 for none'),
    Flag('shuffle_group', ('--shuffle-group', '--shuffle-groups'), 'shuffle_groups', None, int,
         'channel-shuffle groups after feature reuse, 0 for none'),
    Flag('corrected_first_block', ('--corrected-first-block',), 'corrected_first_block', None, bool,
         "decide the first block from the real stem width (a residual wherever shapes allow), not from the "
         "original code's unscaled 16: another network at multipliers <= 0.5 (large) and > 1.0 "
         "(docs/design.md section 8.1)"),
    Flag('classes', ('--classes',), 'classes', None, int, 'number of classes'),
    Flag('dropout', ('--dropout',), 'dropout', None, float, 'dropout before the classifier', network=False),
    Flag('input_size', ('--input-size',), None, 'input_size', int, 'side of the square network input'),
    Flag('crop_ratio', ('--crop-ratio',), None, 'crop_ratio', float,
         'validation centre-crop ratio: resize the short side to ceil(input-size / crop-ratio), crop the centre'),
    Flag('rgb_mean', ('--rgb-mean',), None, 'mean', str, 'comma-separated RGB mean on the 0-255 scale'),
    Flag('rgb_std', ('--rgb-std',), None, 'std', str, 'comma-separated RGB std on the 0-255 scale'),
))


def model_dests():
    """The flags that build the network: ``model`` and those setting a constructor argument."""
    return tuple(d for d, f in FLAGS.items() if f.field is None)


def network_dests():
    """The flags that fix the network's parameters: the model flags of ``eval.py`` and the export, and what a
    resumed run must keep."""
    return tuple(d for d in model_dests() if FLAGS[d].network)


def preprocess_dests():
    """The flags that set the preprocessing."""
    return tuple(d for d, f in FLAGS.items() if f.field is not None)


def _default_text(flag):
    """``default 1; asymmnet_large, asymmnet_small only``: the registry's defaults of an argument flag (each
    with its models where they differ)."""
    specs = [get_model_spec(name) for name in get_model_list()]
    takers = [s for s in specs if flag.argument in s.arguments]
    defaults = OrderedDict()
    for s in takers:
        defaults.setdefault(repr(s.arguments[flag.argument].default), []).append(s.name)
    parts = []
    if len(defaults) > 1:   # whose default is which
        parts.append('default ' + '; '.join('%s for %s' % (v, ', '.join(names)) for v, names in defaults.items()))
    elif flag.type is not bool:
        parts.extend('default %s' % v for v in defaults)
    if len(takers) < len(specs):
        parts.append('%s only' % ', '.join(s.name for s in takers))
    return '; '.join(parts)


def flag_help(dest):
    """The help of a shared flag, with its default as the registry has it."""
    flag = FLAGS[dest]
    if flag.argument is not None:
        text = _default_text(flag)
        return '%s (%s)' % (flag.help, text) if text else flag.help
    if flag.field is not None:
        value = getattr(IMAGENET, flag.field)
        shown = ','.join('%g' % v for v in value) if isinstance(value, tuple) else '%g' % value
        return "%s (default: the model's, %s for the ImageNet models)" % (flag.help, shown)
    return flag.help


def parse_rgb(value, flag='--rgb-mean'):
    """``'1,2,3'`` or 3 numbers -> a tuple of 3 floats; ``ValueError`` naming ``flag`` otherwise."""
    try:
        parts = value.split(',') if isinstance(value, str) else value
        triple = tuple(float(v) for v in parts)
        if len(triple) == 3 and all(math.isfinite(v) for v in triple):
            return triple
    except (TypeError, ValueError):
        pass
    raise ValueError('%s must be 3 comma-separated numbers (R,G,B), got %r' % (flag, value))


def _rgb_type(flag):
    def parse(text):
        try:
            return parse_rgb(text, flag)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err))
    parse.__name__ = 'RGB'
    return parse


def add_flags(group, dests, helps=None):
    """Add the shared flags ``dests`` to an argparse parser or group, each defaulting to None (not given).

    ``helps`` (dest -> text) replaces a flag's help where a command line
    fills it otherwise (e.g. from a checkpoint's record).
    """
    for dest in dests:
        flag = FLAGS[dest]
        kwargs = dict(dest=dest, default=None, help=(helps or {}).get(dest) or flag_help(dest))
        if flag.type is bool:
            kwargs['action'] = 'store_true'
        elif dest == 'model':
            kwargs['choices'] = get_model_list()
        else:
            kwargs['type'] = _rgb_type(flag.flags[0]) if flag.field in ('mean', 'std') else flag.type
        group.add_argument(*flag.flags, **kwargs)


def model_flags_of(name):
    """The shared flags that set the constructor arguments of model ``name``, in the builder's order."""
    by_argument = {f.argument: f.flags[0] for f in FLAGS.values() if f.argument is not None}
    return [by_argument[a] for a in get_model_spec(name).arguments if a in by_argument]


def model_kwargs(model, values, base=None, lenient=False):
    """``get_model`` arguments of ``model`` from flag values.

    Parameters
    ----------
    model : str
    values : mapping
        ``dest -> value``; None (or False for a switch) is a flag not given;
        keys that are not shared flags are ignored (an argparse namespace's
        ``vars`` will do).
    base : dict, optional
        Constructor arguments to start from (a checkpoint's); flags given win.
    lenient : bool
        Leave out values the model does not take instead of refusing them
        (records of older runs, which saved ``asymmrate`` for MobileNetV3).

    Returns
    -------
    dict
        The arguments given (and ``base``'s), by constructor name.

    Raises
    ------
    ValueError
        Unknown model, or a flag the model does not take: one line naming the
        model, the flag, the model's flags (and the model that adds feature
        reuse, if any).
    """
    spec = get_model_spec(model)
    kwargs = dict(base or {})
    for flag in FLAGS.values():
        value = values.get(flag.dest)
        if flag.argument is None or value is None or (flag.type is bool and value is False):
            continue
        if flag.argument not in spec.arguments and flag.argument not in spec.fixed:
            if lenient:
                continue
            raise ValueError('%s takes no %s (%s); it takes %s%s'
                             % (spec.name, flag.argument, flag.flags[0], ', '.join(model_flags_of(spec.name)),
                                spec.with_reuse_note(flag.argument)))
        if flag.argument in NETWORK_ARGUMENTS:
            try:  # before the conversion: int(inf) overflows
                check_network_args(**{flag.argument: value})
            except ValueError as err:
                raise ValueError('%s %s: %s' % (flag.flags[0], value, err)) from None
        kwargs[flag.argument] = flag.type(value)
    spec.check(kwargs)
    return kwargs


def preprocess_config(values, base=IMAGENET):
    """``base`` (a :class:`~gluon_asymmnet.preprocessing.PreprocessConfig`) with the preprocessing flags given.

    Raises
    ------
    ValueError
        A value out of range, naming the flag.
    """
    config = base
    for dest in preprocess_dests():
        flag, value = FLAGS[dest], values.get(dest)
        if value is None:
            continue
        if flag.field in ('mean', 'std'):
            value = parse_rgb(value, flag.flags[0])
        try:
            config = config.replace(**{flag.field: value})
        except ValueError as err:
            raise ValueError('%s %s: %s' % (flag.flags[0], value if not isinstance(value, tuple) else
                                            ','.join('%g' % v for v in value), err)) from None
    return config


ModelChoice = namedtuple('ModelChoice', 'model kwargs preprocess')
ModelChoice.__doc__ = """A model name (None: none chosen), its ``get_model`` arguments and its preprocessing."""


def resolve(values, run=None, pretrained=False):
    """The network and preprocessing that flag values select, over a checkpoint's record.

    Parameters
    ----------
    values : mapping
        Parsed flag values (``dest -> value``, None: not given).
    run : gluon_asymmnet.run_meta.RunInfo, optional
        The record beside the checkpoint.
    pretrained : bool or str
        The weights come from the model store (True or a hash prefix): the
        preprocessing starts from the store entry's.

    Returns
    -------
    ModelChoice
        ``model``: ``--model``, else the run's. ``kwargs``: the run's
        constructor arguments when it is the run's model, the flags given
        over them. ``preprocess``: the run's (what the weights were trained
        with), else the model's (its store entry's with ``pretrained``),
        else ImageNet's; the flags given over it.

    Raises
    ------
    ValueError
        A flag the model does not take, or a preprocessing value out of range.
    """
    model = values.get('model') or (run.model if run is not None else None)
    same = run is not None and model == run.model
    kwargs = model_kwargs(model, values, base=run.kwargs if same else None) if model else {}
    if run is not None:
        base = run.preprocess_config
    elif model:
        base = get_preprocess(model, pretrained, **kwargs)
    else:
        base = IMAGENET
    return ModelChoice(model, kwargs, preprocess_config(values, base))
