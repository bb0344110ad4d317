"""Every published parameter-file layout, as one table: its name, how to recognise it, how its keys map.

Layouts (docs/design.md section 6), detected automatically from the file's keys:

- ``released``: Gluon structural keys (``features.3.expand.conv.weight``), as
  in the authors' released checkpoint and in every file this project's
  networks write with ``save_parameters``.
- ``authors-code``: what the authors' public model code saves; the depthwise
  unit is ``dw_conv`` and the linear unit ``pw_conv_linear``.
- ``gluoncv``: GluonCV's MobileNetV3 files (``mobilenetv3_large-eaa44578.params``,
  ``mobilenetv3_small-10430433.params``). Their keys are the same structural
  keys as ``released`` (GluonCV's MobileNetV3 has the same children), so the
  key set alone cannot tell them apart: structural keys loaded into an
  AsymmNet with ``asymmrate=0`` (``mobilenetv3_*``) are reported as
  ``gluoncv``, into any other network as ``released``.
- ``gluoncv-mobilenetv2``: GluonCV's MobileNetV2 files, each bottleneck one
  Sequential ``out`` of conv/BN/ReLU6 units (``features.4.out.3.weight``, the
  depthwise conv), also as the backbone of GluonCV's
  ``mobile_pose_mobilenetv2_1.0`` (``features.0.4.out.3.weight``);
  ``gluoncv-mobilenetv2-legacy``: the same network in the
  names of Gluon's deprecated ``save_params``
  (``features_linearbottleneck1_conv1_weight``), which GluonCV's
  ``load_parameters`` also reads.
- ``authors-mobilenetv2``: the authors' ``get_mobilenetv2_asymm``
  (``models/mobilenetv2.py`` of their repository): the expansion unit in
  ``features.N.expand.0``/``.1``, the depthwise and linear units in
  ``features.N.out.0``/``.1`` and ``.3``/``.4``.
- ``export``: the ``prefix-0000.params`` files written by
  :func:`gluon_asymmnet.export` or ``HybridBlock.export``: ``arg:``/``aux:``
  keys holding the *prefixed* Gluon parameter names
  (``arg:asymmnet0_conv0_weight``). They are matched to ``net.collect_params()``
  after removing each side's own network prefix, so a file exported from
  another instance (``asymmnet3_...``) loads too. The two constants of the
  export preprocessing wrapper (``preprocess_mean``, ``preprocess_std``) are
  recognised and skipped: they are not network weights.

Adding a layout is one :class:`Layout` entry in :data:`LAYOUTS` (with its key
function when its names differ from the structural ones): a file's layout is
the first entry, in table order, whose ``detect`` claims the file's keys;
``released``, which claims nothing, is what is left. :func:`structural` builds
the key map of a layout that renames structural keys, optionally under other
prefixes (a backbone's keys inside a downstream network).
"""
import re
from collections import Counter, OrderedDict, namedtuple
from dataclasses import dataclass
from types import MappingProxyType
from typing import Callable, Optional

__all__ = ['Layout', 'KeyMap', 'LAYOUTS', 'PREPROCESS_KEYS', 'detect_layout', 'structural', 'strip_export']

KeyMap = namedtuple('KeyMap', 'params mapping skipped')
KeyMap.__doc__ = """What a layout makes of a file for a network: ``params`` (network key -> Parameter),
``mapping`` (network key -> file key, one per parameter to load) and ``skipped`` (file keys that are
known not to be network weights)."""


@dataclass(frozen=True)
class Layout:
    """One parameter-file layout: its ``name``, a one-line ``describe`` (whose files, what keys), and two functions.

    ``detect(keys, net) -> bool`` says whether the file's keys (a list) are
    this layout's, given the target network (None when unknown); it is None
    for the layout that is left when no other claims the keys.
    ``key_map(net, index) -> KeyMap`` maps the network's parameters to the
    keys of a file with that index (``key -> (shape, dtype, ...)``).
    """
    name: str
    describe: str
    detect: Optional[Callable]
    key_map: Callable


# Constants of gluon_asymmnet.export's preprocessing wrapper, not network weights.
PREPROCESS_KEYS = ('preprocess_mean', 'preprocess_std')


def structural(rename=None, prefixes=None):
    """The key map of a layout whose keys are the network's structural keys, renamed.

    Parameters
    ----------
    rename : callable, optional
        ``rename(keys) -> {key: file key}`` for a list of structural keys
        (``features.3.conv1.conv.weight``); default: the keys themselves.
    prefixes : mapping, optional
        Network-key prefix -> file-key prefix: the keys under a network
        prefix are renamed without it and then given the file prefix (a
        backbone's ``released`` keys saved under another name in a
        downstream network); the other keys are renamed as they are.

    Returns
    -------
    callable
        ``key_map(net, index) -> KeyMap`` over ``net``'s structural names.
    """
    order = sorted(prefixes or {}, key=len, reverse=True)

    def key_map(net, index):
        params = net._collect_params_with_prefix()
        groups = OrderedDict()
        for key in params:
            prefix = next((p for p in order if key.startswith(p)), '')
            groups.setdefault(prefix, []).append(key[len(prefix):])
        file_keys = {}
        for prefix, keys in groups.items():
            renamed = rename(keys) if rename else {k: k for k in keys}
            for k in keys:
                file_keys[prefix + k] = (prefixes[prefix] if prefix else '') + renamed[k]
        return KeyMap(params, OrderedDict((k, file_keys[k]) for k in params), [])
    return key_map


def _exported(keys):
    return any(k.startswith(('arg:', 'aux:')) for k in keys)


def _authors_code(keys):
    return {k: k if '.se.' in k else k.replace('.conv1.', '.dw_conv.').replace('.conv2.', '.pw_conv_linear.')
            for k in keys}


# ``features.N``, or ``features.0.N`` in a MobilePose (its backbone layers are one Sequential inside ``features``).
_BLOCK_UNIT = re.compile(r'^(features(?:\.0)?\.(\d+))\.(expand|conv1|conv2)\.(conv|bn)\.(\w+)$')
_V2_KEY = re.compile(r'^(features|output)\.(\d+)(?:\.out\.(\d+))?\.(\w+)$')


def _sequential_key(key, keys, authors):
    """A bottleneck key (``features.4.conv1.conv.weight``) in MobileNetV2's Sequential layouts.

    GluonCV's block is one Sequential ``out`` of conv, BN, ReLU6 units;
    the authors' keeps the expansion unit in a Sequential ``expand`` of its own.
    """
    m = _BLOCK_UNIT.match(key)
    if not m:
        return key
    block, _, unit, part, name = m.groups()
    sub = 0 if part == 'conv' else 1
    if authors and unit == 'expand':
        return '%s.expand.%d.%s' % (block, sub, name)
    units = ['conv1', 'conv2']
    if not authors and block + '.expand.conv.weight' in keys:
        units.insert(0, 'expand')
    return '%s.out.%d.%s' % (block, 3 * units.index(unit) + sub, name)


def _sequential(authors):
    def rename(keys):
        present = set(keys)
        return {k: _sequential_key(k, present, authors) for k in keys}
    return rename


def _legacy_v2_key(key, first_block):
    """A ``gluoncv-mobilenetv2`` key in the names of Gluon's ``save_params`` (network prefix stripped).

    Those count each kind of layer per name scope: the stem is
    ``features_conv0``/``features_batchnorm0``, the last 1x1 unit
    ``features_conv1``/``features_batchnorm1``, unit K of block B
    ``features_linearbottleneckB_{conv|batchnorm}{K // 3}``, the classifier ``output_pred``.
    """
    m = _V2_KEY.match(key)
    if not m:  # not a MobileNetV2 parameter: reported missing under its own name
        return key
    head, index, unit, name = m.groups()
    kind = 'conv' if name == 'weight' else 'batchnorm'
    if head == 'output':
        return 'output_pred_' + name
    if unit is not None:
        return 'features_linearbottleneck%d_%s%d_%s' % (int(index) - first_block, kind, int(unit) // 3, name)
    return 'features_%s%d_%s' % (kind, 0 if int(index) < first_block else 1, name)


def _legacy_v2(keys):
    sequential = _sequential(False)(keys)
    first = min((int(m.group(2)) for m in map(_BLOCK_UNIT.match, keys) if m), default=0)
    return {k: _legacy_v2_key(v, first) for k, v in sequential.items()}


def strip_export(key):
    """A key of an exported parameter file without its ``arg:``/``aux:`` kind."""
    return key[4:] if key.startswith(('arg:', 'aux:')) else key


def _export_map(net, index):
    """Network parameter name -> file key for ``arg:``/``aux:`` files, whatever the file's prefix."""
    named = net.collect_params()
    own = net.prefix
    suffixes = OrderedDict((name[len(own):] if name.startswith(own) else name, name) for name in named)
    weights = [k for k in index if strip_export(k) not in PREPROCESS_KEYS]
    # The file's network prefix is the one under which most of its keys are network suffixes.
    votes = Counter()
    for key in weights:
        name = strip_export(key)
        for suffix in suffixes:
            if name.endswith(suffix):
                votes[name[:len(name) - len(suffix)]] += 1
    prefix = votes.most_common(1)[0][0] if votes else own
    by_name = {strip_export(k): k for k in weights}
    mapping = OrderedDict()
    for suffix, name in suffixes.items():
        kind = 'aux:' if suffix.endswith(('running_mean', 'running_var')) else 'arg:'
        mapping[name] = by_name.get(prefix + suffix, kind + prefix + suffix)
    return KeyMap(named, mapping, [k for k in index if strip_export(k) in PREPROCESS_KEYS])


def _mobilenetv3(net):
    """An AsymmNet (it has ``arch``) with asymmrate 0: GluonCV's MobileNetV3."""
    return net is not None and getattr(net, 'asymmrate', None) == 0 and hasattr(net, 'arch')


def _table(*layouts):
    return MappingProxyType(OrderedDict((layout.name, layout) for layout in layouts))


LAYOUTS = _table(
    Layout('released', "Gluon structural keys with block children expand/conv1/se/conv2 "
                       "(the authors' released checkpoint; save_parameters of this project)",
           None, structural()),
    Layout('authors-code', "structural keys with dw_conv/pw_conv_linear (the authors' public model code)",
           lambda keys, net: not _exported(keys) and any('.dw_conv.' in k or '.pw_conv_linear.' in k for k in keys),
           structural(_authors_code)),
    Layout('export', "arg:/aux: keys with prefixed parameter names (HybridBlock.export, gluon_asymmnet.export)",
           lambda keys, net: _exported(keys), _export_map),
    Layout('authors-mobilenetv2', "the authors' MobileNetV2-asymm code: features.N.expand.K and features.N.out.K",
           lambda keys, net: any('.out.' in k for k in keys) and any('.expand.0.' in k for k in keys),
           structural(_sequential(True))),
    Layout('gluoncv-mobilenetv2', "GluonCV's MobileNetV2 files: features.N.out.K, each block one Sequential",
           lambda keys, net: any('.out.' in k for k in keys), structural(_sequential(False))),
    Layout('gluoncv-mobilenetv2-legacy',
           "GluonCV's MobileNetV2 in save_params names (features_linearbottleneckB_convJ_weight)",
           lambda keys, net: bool(keys) and not any('.' in k for k in keys) and any('linearbottleneck' in k
                                                                                    for k in keys),
           structural(_legacy_v2)),
    # Last: its keys are released's; only the target network tells them apart.
    Layout('gluoncv', "GluonCV's MobileNetV3 files: structural keys, into an asymmrate-0 AsymmNet",
           lambda keys, net: _mobilenetv3(net), structural()),
)


def detect_layout(keys, net=None):
    """Name the layout of a set of file keys (see the module docstring).

    Parameters
    ----------
    keys : iterable of str
        The file's keys.
    net : Block, optional
        The target network: structural keys into an AsymmNet with
        ``asymmrate=0`` are GluonCV's MobileNetV3 layout.

    Returns
    -------
    str
        A name from :data:`LAYOUTS`.
    """
    keys = list(keys)
    claimed = (layout.name for layout in LAYOUTS.values() if layout.detect is not None and layout.detect(keys, net))
    return next(claimed, next(layout.name for layout in LAYOUTS.values() if layout.detect is None))
