"""Every published parameter-file layout, and one all-or-nothing loader for them.

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
  ``mobile_pose_mobilenetv2_1.0`` (``features.0.4.out.3.weight``); ``gluoncv-mobilenetv2-legacy``: the same network in the
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

Files saved in float16 (or float64) are cast to the network's dtype on load.

Every parameter file is read here, without ``mx.nd.load``: ``mx.nd.load``
trusts the sizes written in the file, and a damaged header can crash the
process (a shape of ``ndim = -1`` is a segmentation fault in MXNet 1.9.1, a
declared dimension of 2**40 an allocation of that size) instead of raising.
:func:`read_index` parses the structure and checks every size against the
file's length; :func:`load_param_dict` then reads the arrays with NumPy and
refuses NaN or infinite values unless told otherwise. Every reader of a
parameter file goes through it: :func:`load_checkpoint` (a Gluon network),
:func:`import_symbol_block` (an exported symbol JSON + params, as
``SymbolBlock.imports``), and any caller that needs the arrays themselves.
Parameter files are NDArray lists, never Python pickles; this module never
unpickles anything (Trainer ``.states`` files are pickles and are refused).
"""
import fnmatch
import json
import os
import re
import struct
from collections import Counter, OrderedDict

import mxnet as mx
import numpy as np

from .export_record import recorded_use
from .files import not_a_file

__all__ = ['CheckpointError', 'LAYOUTS', 'read_index', 'load_param_dict', 'detect_layout', 'load_checkpoint',
           'read_symbol', 'import_symbol_block']


class CheckpointError(ValueError):
    """A parameter file that cannot be loaded into the given network."""


LAYOUTS = OrderedDict([
    ('released', "Gluon structural keys with block children expand/conv1/se/conv2 "
                 "(the authors' released checkpoint; save_parameters of this project)"),
    ('authors-code', "structural keys with dw_conv/pw_conv_linear (the authors' public model code)"),
    ('gluoncv', "GluonCV's MobileNetV3 files: structural keys, into an asymmrate-0 AsymmNet"),
    ('gluoncv-mobilenetv2', "GluonCV's MobileNetV2 files: features.N.out.K, each block one Sequential"),
    ('gluoncv-mobilenetv2-legacy',
     "GluonCV's MobileNetV2 in save_params names (features_linearbottleneckB_convJ_weight)"),
    ('authors-mobilenetv2', "the authors' MobileNetV2-asymm code: features.N.expand.K and features.N.out.K"),
    ('export', "arg:/aux: keys with prefixed parameter names (HybridBlock.export, gluon_asymmnet.export)"),
])

# Constants of gluon_asymmnet.export's preprocessing wrapper, not network weights.
PREPROCESS_KEYS = ('preprocess_mean', 'preprocess_std')

_LIST_MAGIC = 0x112
_ND_V1, _ND_V2, _ND_V3 = 0xF993FAC8, 0xF993FAC9, 0xF993FACA
_CPU_DEVICE_TYPES = (1, 2, 3, 5)  # cpu, gpu, cpu_pinned, cpu_shared: all load onto the CPU
_FLOAT_TYPES = {0: np.dtype('<f4'), 1: np.dtype('<f8'), 2: np.dtype('<f2')}
# The integer arrays of a quantized (INT8) model's file, beside its float ones.
_QUANTIZED_TYPES = dict(_FLOAT_TYPES)
_QUANTIZED_TYPES.update({3: np.dtype('u1'), 4: np.dtype('<i4'), 5: np.dtype('i1'), 6: np.dtype('<i8')})
_OTHER_TYPES = {3: 'uint8', 4: 'int32', 5: 'int8', 6: 'int64', 7: 'bool', 12: 'bfloat16'}
_STORAGE = {1: 'row_sparse', 2: 'csr'}
_MAX_NDIM = 32


class _Reader:
    """Bounds-checked reads of a binary file; every failure names the file and the byte offset."""

    def __init__(self, f, size, path):
        self.f, self.size, self.path = f, size, path

    @property
    def pos(self):
        return self.f.tell()

    def left(self):
        return self.size - self.pos

    def fail(self, what):
        raise CheckpointError('%s: not a valid MXNet parameter file: %s' % (self.path, what))

    def read(self, n, what):
        at = self.pos
        if n > self.left():
            self.fail('truncated at byte %d: %s needs %d bytes, the file has %d left (file size %d)'
                      % (at, what, n, self.left(), self.size))
        return self.f.read(n)

    def unpack(self, fmt, what):
        return struct.unpack(fmt, self.read(struct.calcsize(fmt), what))

    def skip(self, n, what):
        if n > self.left():
            self.fail('truncated at byte %d: %s needs %d bytes, the file has %d left (file size %d)'
                      % (self.pos, what, n, self.left(), self.size))
        self.f.seek(n, os.SEEK_CUR)


def _describe_start(head):
    if head.startswith(b'\x80') and len(head) > 1 and head[1] <= 5:
        return ('it is a Python pickle (a Trainer .states file?); parameter files are NDArray '
                'lists and pickles are never loaded')
    if head.startswith(b'PK\x03\x04'):
        return 'it is a zip archive (unpack the .params file inside it first)'
    # Ignore a multi-byte character cut at the end of the sample; anything else undecodable is binary.
    text = head.decode('utf-8', 'ignore')
    if text and len(text.encode('utf-8')) >= len(head) - 3 and \
            all(c.isprintable() or c in '\t\r\n' for c in text):
        return 'it is a text file starting with %r' % text[:40]
    return 'it starts with bytes %s, not the NDArray-list header 0x112' % head[:8].hex()


def read_index(path, quantized=False):
    """Parse an MXNet NDArray-list file without loading it: names, shapes, dtypes.

    The format (``mx.nd.save``): ``uint64 0x112``, ``uint64 0``, ``uint64 n``,
    then ``n`` arrays (``uint32`` magic, ``int32`` storage type for V2,
    ``int32 ndim``, ``int64`` dims, ``int32`` device type and id, ``int32``
    dtype code, the raw data), then ``uint64 n`` names, each ``uint64``
    length and UTF-8 bytes. Every size is checked against the file's length.

    Parameters
    ----------
    path : str
        The parameter file.
    quantized : bool
        Also accept the integer arrays (uint8, int8, int32, int64) of a
        quantized model's file; otherwise only float16/32/64 arrays.

    Returns
    -------
    OrderedDict
        ``name -> (shape tuple, numpy dtype)`` in file order.

    Raises
    ------
    CheckpointError
        For a missing, empty, truncated, damaged or foreign file, naming the
        file, the array and the byte offset of the problem.
    """
    return OrderedDict((k, (shape, dtype)) for k, (shape, dtype, _) in _parse(path, quantized).items())


def _parse(path, quantized):
    """``name -> (shape, dtype, byte offset of the data)``; see :func:`read_index`."""
    path = os.fspath(path)
    what = not_a_file(path)
    if what == 'does not exist':
        raise CheckpointError('%s: no such parameter file' % path)
    if what:
        raise CheckpointError('%s %s, not a parameter file' % (path, what))
    size = os.path.getsize(path)
    if size == 0:
        raise CheckpointError('%s: the file is empty (0 bytes), not an MXNet parameter file' % path)
    with open(path, 'rb') as f:
        r = _Reader(f, size, path)
        head = f.read(64)
        f.seek(0)
        if len(head) < 8 or struct.unpack('<Q', head[:8])[0] != _LIST_MAGIC:
            raise CheckpointError('%s: not an MXNet parameter file: %s' % (path, _describe_start(head)))
        r.unpack('<QQ', 'the file header')
        count, = r.unpack('<Q', 'the array count')
        # An array record and its name take at least 36 bytes: refuse absurd counts before looping.
        if count * 36 > r.left():
            r.fail('the header announces %d arrays, more than the %d bytes left can hold (truncated or damaged)'
                   % (count, r.left()))
        arrays = []
        for i in range(count):
            where = 'array #%d (at byte %d)' % (i, r.pos)
            magic, = r.unpack('<I', where + ' magic')
            if magic == _ND_V2:
                stype, = r.unpack('<i', where + ' storage type')
                if stype != 0:
                    r.fail('%s has storage type %s; parameters are dense arrays'
                           % (where, _STORAGE.get(stype, 'code %d' % stype)))
            elif magic == _ND_V3:
                r.fail('%s was saved with NumPy semantics (mx.npx.save), which this loader does not read'
                       % where)
            elif magic != _ND_V1:
                r.fail('%s starts with %#x, not an NDArray record (legacy pre-1.0 files are not supported)'
                       % (where, magic))
            ndim, = r.unpack('<i', where + ' ndim')
            if not 1 <= ndim <= _MAX_NDIM:
                r.fail('%s has %d dimensions' % (where, ndim))
            shape = r.unpack('<%dq' % ndim, where + ' shape')
            if any(d < 0 for d in shape):
                r.fail('%s has a negative dimension in shape %s' % (where, shape))
            dev_type, _ = r.unpack('<ii', where + ' context')
            if dev_type not in _CPU_DEVICE_TYPES:
                r.fail('%s has device type %d' % (where, dev_type))
            code, = r.unpack('<i', where + ' dtype')
            types = _QUANTIZED_TYPES if quantized else _FLOAT_TYPES
            if code not in types:
                r.fail('%s has dtype %s; parameters are %s'
                       % (where, _OTHER_TYPES.get(code, 'code %d' % code),
                          'float or (quantized) int8, uint8, int32, int64' if quantized
                          else 'float16, float32 or float64'))
            dtype = types[code]
            nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
            offset = r.pos
            r.skip(nbytes, '%s data (shape %s, %s)' % (where, shape, dtype.name))
            arrays.append((tuple(int(d) for d in shape), dtype, offset))
        nnames, = r.unpack('<Q', 'the name count')
        if nnames != count:
            r.fail('it holds %d arrays but %d names (an unnamed list from mx.nd.save?)' % (count, nnames))
        names = []
        for i in range(nnames):
            n, = r.unpack('<Q', 'the length of name #%d' % i)
            raw = r.read(n, 'name #%d' % i)
            try:
                names.append(raw.decode('utf-8'))
            except UnicodeDecodeError:
                r.fail('name #%d is not UTF-8 text' % i)
        if r.left():
            r.fail('%d unexpected bytes after the end of the data, at byte %d' % (r.left(), r.pos))
    dup = [k for k, c in Counter(names).items() if c > 1]
    if dup:
        raise CheckpointError('%s: not a valid MXNet parameter file: the name %r occurs %d times'
                              % (path, dup[0], names.count(dup[0])))
    return OrderedDict(zip(names, arrays))


def _contexts(ctx, where):
    """``ctx`` as a non-empty list of contexts this MXNet can use (None stays None).

    Checked before anything is read or touched: loading onto a GPU that a
    CPU build of MXNet cannot use failed only after the first parameter had
    moved, leaving the network unusable.
    """
    if ctx is None:
        return None
    ctxs = [ctx] if isinstance(ctx, mx.Context) else list(ctx) if isinstance(ctx, (list, tuple)) else None
    if not ctxs or not all(isinstance(c, mx.Context) for c in ctxs):
        raise CheckpointError('%s: ctx must be an mx.Context or a non-empty list of them, got %r' % (where, ctx))
    gpus = [c for c in ctxs if c.device_type == 'gpu']
    if gpus:
        try:
            count, reason = mx.context.num_gpus(), None
        except mx.base.MXNetError as err:
            count, reason = 0, _last_line(err)
        beyond = [c for c in gpus if c.device_id >= count]
        if beyond:
            raise CheckpointError('%s: cannot load onto %s: %s; nothing was loaded'
                                  % (where, beyond[0], reason or (
                                      'this MXNet sees no GPU (a CPU-only build, or no GPU visible)' if not count
                                      else 'this MXNet sees %d GPU%s' % (count, 's' if count > 1 else ''))))
    return ctxs


def _last_line(err):
    """The informative line of an MXNetError (its check or operator), without log prefixes."""
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    chosen = next((line for line in lines if 'Error in operator' in line or 'Check failed' in line),
                  lines[-1] if lines else type(err).__name__)
    return re.sub(r'^(MXNetError: )?(\[[\d:]+\] \S+:\d+: )?', '', chosen)


def _read_arrays(path, index):
    """``name -> numpy array`` for an index from :func:`_parse`, read at its data offsets."""
    arrays = OrderedDict()
    with open(path, 'rb') as f:
        for name, (shape, dtype, offset) in index.items():
            f.seek(offset)
            count = int(np.prod(shape, dtype=np.int64))
            data = np.fromfile(f, dtype=dtype, count=count)
            if data.size != count:
                raise CheckpointError('%s: the file changed while it was read (array %s is cut short)' % (path, name))
            arrays[name] = data.reshape(shape)
    return arrays


def _check_finite(where, arrays, allow_non_finite):
    """Refuse NaN and infinite values, naming the arrays that hold them."""
    if allow_non_finite:
        return
    bad = []
    for name, a in arrays.items():
        if a.dtype.kind == 'f' and not np.isfinite(a).all():
            nan, inf = int(np.isnan(a).sum()), int(np.isinf(a).sum())
            what = ', '.join(w for w in ('%d NaN' % nan if nan else '', '%d infinite' % inf if inf else '') if w)
            bad.append('%s (%s of %d values)' % (name, what, a.size))
    if bad:
        more = ' and %d more' % (len(bad) - 5) if len(bad) > 5 else ''
        raise CheckpointError('%s: %d array%s hold%s NaN or infinite values: %s%s (a diverged run or a float16 '
                              'overflow?); pass allow_non_finite=True to load them anyway'
                              % (where, len(bad), 's' if len(bad) > 1 else '', '' if len(bad) > 1 else 's',
                                 '; '.join(bad[:5]), more))


def load_param_dict(path, ctx=None, allow_non_finite=False, quantized=False):
    """Read a parameter file into NDArrays, safely: the replacement for ``mx.nd.load``.

    The file is parsed by :func:`read_index` (every size checked against the
    file's length) and read with NumPy, so a damaged or hostile file raises
    :class:`CheckpointError` instead of crashing the process or allocating
    what its header claims.

    Parameters
    ----------
    path : str
        An NDArray-dict file (``.params``; any layout, ``arg:``/``aux:`` keys
        are returned as they are).
    ctx : Context, optional
        Where the arrays are created (default the CPU).
    allow_non_finite : bool
        Return arrays that hold NaN or infinite values instead of refusing
        the file.
    quantized : bool
        Accept the integer arrays of a quantized model's file (see
        :func:`read_index`).

    Returns
    -------
    OrderedDict
        ``name -> NDArray`` in file order, each in the dtype of the file.

    Raises
    ------
    CheckpointError
        A missing, damaged or foreign file, an unusable ``ctx``, or
        non-finite values; the message names the file.
    """
    path = os.fspath(path)
    if ctx is not None and not isinstance(ctx, mx.Context):
        raise CheckpointError('%s: ctx must be one mx.Context, got %r' % (path, ctx))
    ctx = (_contexts(ctx, path) or [mx.cpu()])[0]
    arrays = _read_arrays(path, _parse(path, quantized))
    _check_finite(path, arrays, allow_non_finite)
    return OrderedDict((k, mx.nd.array(v, ctx=ctx, dtype=v.dtype)) for k, v in arrays.items())


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
    if any(k.startswith(('arg:', 'aux:')) for k in keys):
        return 'export'
    if any('.dw_conv.' in k or '.pw_conv_linear.' in k for k in keys):
        return 'authors-code'
    if any('.out.' in k for k in keys):
        return 'authors-mobilenetv2' if any('.expand.0.' in k for k in keys) else 'gluoncv-mobilenetv2'
    if keys and not any('.' in k for k in keys) and any('linearbottleneck' in k for k in keys):
        return 'gluoncv-mobilenetv2-legacy'
    # Structural keys into MobileNetV3 (an AsymmNet, which has ``arch``, with asymmrate 0).
    if net is not None and getattr(net, 'asymmrate', None) == 0 and hasattr(net, 'arch'):
        return 'gluoncv'
    return 'released'


# ``features.N``, or ``features.0.N`` in a MobilePose (its backbone layers are one Sequential inside ``features``).
_BLOCK_UNIT = re.compile(r'^(features(?:\.0)?\.(\d+))\.(expand|conv1|conv2)\.(conv|bn)\.(\w+)$')
_V2_KEY = re.compile(r'^(features|output)\.(\d+)(?:\.out\.(\d+))?\.(\w+)$')


def _sequential_key(key, params, authors):
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
    if not authors and block + '.expand.conv.weight' in params:
        units.insert(0, 'expand')
    return '%s.out.%d.%s' % (block, 3 * units.index(unit) + sub, name)


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


def _structural_map(layout, params):
    """Network key -> file key for the structural layouts."""
    if layout == 'authors-code':
        def to_file(key):
            return key.replace('.conv1.', '.dw_conv.').replace('.conv2.', '.pw_conv_linear.') \
                if '.se.' not in key else key
        return OrderedDict((k, to_file(k)) for k in params)
    if layout in ('gluoncv-mobilenetv2', 'authors-mobilenetv2', 'gluoncv-mobilenetv2-legacy'):
        mapping = OrderedDict((k, _sequential_key(k, params, layout == 'authors-mobilenetv2')) for k in params)
        if layout == 'gluoncv-mobilenetv2-legacy':
            first = min((int(m.group(2)) for m in map(_BLOCK_UNIT.match, params) if m), default=0)
            mapping = OrderedDict((k, _legacy_v2_key(v, first)) for k, v in mapping.items())
        return mapping
    return OrderedDict((k, k) for k in params)


# Parameter names only gluon_asymmnet.deploy's deployment form has (its bottlenecks' per-part convolutions).
_DEPLOYMENT_KEY = re.compile(r'deploy_block\d+_(dw|proj)\d+_weight$')


def _strip_export(key):
    return key[4:] if key.startswith(('arg:', 'aux:')) else key


def _export_map(index, net):
    """Network parameter name -> file key for ``arg:``/``aux:`` files, whatever the file's prefix."""
    named = net.collect_params()
    own = net.prefix
    suffixes = OrderedDict((name[len(own):] if name.startswith(own) else name, name) for name in named)
    weights = [k for k in index if _strip_export(k) not in PREPROCESS_KEYS]
    # The file's network prefix is the one under which most of its keys are network suffixes.
    votes = Counter()
    for key in weights:
        name = _strip_export(key)
        for suffix in suffixes:
            if name.endswith(suffix):
                votes[name[:len(name) - len(suffix)]] += 1
    prefix = votes.most_common(1)[0][0] if votes else own
    by_name = {_strip_export(k): k for k in weights}
    mapping = OrderedDict()
    for suffix, name in suffixes.items():
        kind = 'aux:' if suffix.endswith(('running_mean', 'running_var')) else 'arg:'
        mapping[name] = by_name.get(prefix + suffix, kind + prefix + suffix)
    return mapping, [k for k in index if _strip_export(k) in PREPROCESS_KEYS]


def _fits(expected, found):
    """A network shape (0 = not yet known) accepts a file shape."""
    if not expected:
        return True
    return len(expected) == len(found) and all(e in (0, f) for e, f in zip(expected, found))


def _excluded(params, patterns, path):
    """Network keys matching ``exclude``'s shell patterns; a pattern that matches nothing is an error."""
    if isinstance(patterns, str):
        patterns = [patterns]
    found = set()
    for pattern in patterns:
        hits = fnmatch.filter(params, pattern)
        if not hits:
            raise CheckpointError('%s: exclude=%r matches no parameter of the network (structural names such as '
                                  '%s)' % (path, pattern, next(iter(params), '?')))
        found.update(hits)
    return found


def load_checkpoint(net, path, ctx=None, layout=None, allow_non_finite=False, exclude=()):
    """Load a parameter file of any known layout into ``net``, all or nothing.

    Every key and shape is checked, every value read and checked finite, and
    ``ctx`` checked usable, before the network is touched; on any problem the
    network keeps its parameters and :class:`CheckpointError` names the file
    and the first missing, unexpected or mismatched key (with the expected
    and found shapes), the arrays holding NaN or infinite values, or the
    unusable context.

    ``exclude`` leaves some parameters out on both sides: they are neither
    required in the file nor loaded (their file entries, whatever their
    shapes, are skipped) and keep their values in the network. The rest is
    still loaded all or nothing. Fine-tuning uses it to load everything but
    the classifier (:mod:`gluon_asymmnet.finetune`).

    Parameters
    ----------
    net : mxnet.gluon.HybridBlock
        The network to fill.
    path : str
        The parameter file (``.params``; pickled Trainer ``.states`` files
        are refused, never unpickled).
    ctx : Context or list of Context, optional
        Where the parameters live. Default: where already-initialized
        parameters are, the CPU for the others.
    layout : str, optional
        Force a layout from :data:`LAYOUTS` instead of detecting it.
    allow_non_finite : bool
        Load NaN or infinite values instead of refusing the file (they are
        refused by default: an overflowed float16 file can still give finite
        logits, and a diverged run's weights train nothing).
    exclude : str or sequence of str
        Shell patterns (``fnmatch``) of structural parameter names
        (``output.0.*``) to leave out; each must match a parameter.

    Returns
    -------
    str
        The name of the layout used.

    Raises
    ------
    CheckpointError
        The file cannot be loaded into this network.
    """
    path = os.fspath(path)
    if layout is not None and layout not in LAYOUTS:
        raise CheckpointError('unknown layout %r; known: %s' % (layout, ', '.join(LAYOUTS)))
    ctx = _contexts(ctx, path)
    index = _parse(path, False)
    if not index:
        raise CheckpointError('%s: holds no parameters' % path)
    name = layout or detect_layout(index, net)
    if name == 'export':
        params = net.collect_params()
        mapping, skipped = _export_map(index, net)
    else:
        params = net._collect_params_with_prefix()
        mapping, skipped = _structural_map(name, params), []
    if exclude:
        structural = net._collect_params_with_prefix()
        left_out = {id(structural[k]) for k in _excluded(structural, exclude, path)}
        for key in [k for k in mapping if id(params[k]) in left_out]:
            skipped.append(mapping.pop(key))
    where = '%s (layout %s)' % (path, name)

    problems, counts = [], Counter()
    for key, file_key in mapping.items():
        alias = '' if file_key == key else ', network parameter %s' % key
        expected = tuple(params[key].shape)
        if file_key not in index:
            counts['missing'] += 1
            problems.append('missing parameter %s (shape %s%s)' % (file_key, expected, alias))
        elif not _fits(expected, index[file_key][0]):
            counts['mismatched'] += 1
            problems.append('parameter %s has shape %s in the file, the network expects %s%s'
                            % (file_key, index[file_key][0], expected, alias))
    for k in sorted(set(index) - set(mapping.values()) - set(skipped)):
        counts['unexpected'] += 1
        problems.append('unexpected parameter %s (shape %s) not in the network' % (k, index[k][0]))
    if problems and name == 'export' and any(_DEPLOYMENT_KEY.search(k) for k in index):
        raise CheckpointError(
            '%s: a deployment-form export (gluon_asymmnet.deploy: BatchNorm folded, no feature-reuse concat), whose '
            'parameters load only with its symbol (mx.gluon.SymbolBlock.imports, '
            'gluon_asymmnet.checkpoint.import_symbol_block, eval.py --model-prefix)%s; for a file that loads into the '
            'network, export with deploy=False (--no-deploy)' % (path, recorded_use(path)))
    if problems:
        more = ''
        if len(problems) > 1:
            more = ' (%d problems in all: %d missing, %d mismatched, %d unexpected)' % (
                len(problems), counts['missing'], counts['mismatched'], counts['unexpected'])
        raise CheckpointError('%s: %s%s' % (where, problems[0], more))

    arrays = _read_arrays(path, OrderedDict((k, index[k]) for k in mapping.values()))
    _check_finite(where, arrays, allow_non_finite)
    for key, file_key in mapping.items():
        param = params[key]
        data = mx.nd.array(arrays[file_key], dtype=param.dtype if param.dtype is not None else arrays[file_key].dtype)
        if param._data is None:
            param._load_init(data, None if param._deferred_init else (ctx or [mx.cpu()]))
            if ctx and set(ctx) != set(param.list_ctx()):
                param.reset_ctx(ctx)
        else:
            if ctx and set(ctx) != set(param.list_ctx()):
                param.reset_ctx(ctx)
            param.set_data(data)
    return name


def read_symbol(path):
    """An MXNet symbol JSON file as a Symbol; anything else is refused with one line naming the file.

    Raises
    ------
    CheckpointError
        A missing, empty, truncated, binary or foreign file, or a graph MXNet
        cannot build.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointError('%s: no such symbol file' % path)
    with open(path, 'rb') as f:
        raw = f.read()
    if not raw.strip():
        raise CheckpointError('%s: the file is empty (%d bytes), not an MXNet symbol JSON' % (path, len(raw)))
    if raw[:8] == struct.pack('<Q', _LIST_MAGIC):
        raise CheckpointError('%s: it is an MXNet parameter file (PREFIX-NNNN.params), not the PREFIX-symbol.json '
                              'graph' % path)
    try:
        text = raw.decode('utf-8')
    except UnicodeDecodeError as err:
        raise CheckpointError('%s: not an MXNet symbol JSON: byte %d is not UTF-8 text (binary data, starting %s)'
                              % (path, err.start, raw[:8].hex())) from None
    try:
        graph = json.loads(text)
    except ValueError as err:
        # A graph is one JSON object: text that does not end with its closing brace was cut short.
        cut = '; the file ends before the JSON does (truncated?)' if not text.rstrip().endswith('}') else ''
        raise CheckpointError('%s: not an MXNet symbol JSON: %s (line %d column %d)%s'
                              % (path, err.msg, err.lineno, err.colno, cut)) from None
    if not isinstance(graph, dict) or not isinstance(graph.get('nodes'), list) or 'heads' not in graph:
        raise CheckpointError('%s: not an MXNet symbol JSON: it has no "nodes" and "heads" (another JSON file?)' % path)
    try:
        return mx.sym.load_json(text)
    except mx.base.MXNetError as err:
        raise CheckpointError('%s: MXNet cannot build this graph: %s' % (path, _last_line(err))) from None


def import_symbol_block(symbol_file, params_file, ctx=None, input_name='data', input_dtype='float32',
                        input_shape=None, allow_non_finite=False, quantized=False):
    """``SymbolBlock.imports`` through the safe reader: an exported graph and its parameters, checked first.

    The graph is read by :func:`read_symbol`, the parameters by the parser of
    :func:`load_param_dict`; every parameter the graph needs must be in the
    file (``arg:``/``aux:`` keys, as ``HybridBlock.export`` writes) and the
    file must hold nothing else. With ``input_shape`` the graph's shapes are
    inferred and compared with the file's, so a file of another width or
    model is refused here instead of failing at the first forward pass.
    Parameters keep the file's dtypes.

    Parameters
    ----------
    symbol_file, params_file : str
        ``PREFIX-symbol.json`` and ``PREFIX-NNNN.params``.
    ctx : Context or list of Context, optional
        Default: the CPU.
    input_name : str
        The graph's input.
    input_dtype : str or None
        The input's dtype (``'uint8'`` for a graph exported with
        preprocessing); None leaves it for MXNet to find at the first call.
    input_shape : tuple of int, optional
        An input shape to check the parameters' shapes at.
    allow_non_finite, quantized : bool
        As for :func:`load_param_dict`.

    Returns
    -------
    mxnet.gluon.SymbolBlock

    Raises
    ------
    CheckpointError
        Naming the file and the first problem.
    """
    symbol_file, params_file = os.fspath(symbol_file), os.fspath(params_file)
    ctx = _contexts(ctx, params_file) or [mx.cpu()]
    sym = read_symbol(symbol_file)
    if input_name not in sym.list_inputs():
        raise CheckpointError('%s: the graph has no input named %r; its inputs begin %s'
                              % (symbol_file, input_name, ', '.join(sym.list_inputs()[:3])))
    wanted = [a for a in sym.list_arguments() if a != input_name] + sym.list_auxiliary_states()
    index = _parse(params_file, quantized)
    by_name = OrderedDict()
    for key in index:
        name = _strip_export(key)
        if name in by_name:
            raise CheckpointError('%s: holds %s twice (%s and %s)' % (params_file, name, by_name[name], key))
        by_name[name] = key
    where = '%s does not fit %s' % (params_file, symbol_file)
    problems = ['missing parameter %s' % n for n in wanted if n not in by_name]
    problems += ['unexpected parameter %s (shape %s)' % (k, index[k][0]) for n, k in by_name.items()
                 if n not in set(wanted)]
    if problems:
        raise CheckpointError('%s: %s%s' % (where, problems[0], ' (%d problems in all)' % len(problems)
                                            if len(problems) > 1 else ''))
    if input_shape is not None:
        shape = tuple(int(d) for d in input_shape)
        try:
            arg_shapes, _, aux_shapes = sym.infer_shape(**{input_name: shape})
        except mx.base.MXNetError as err:
            raise CheckpointError('%s: the graph does not take a %s input of shape %s: %s'
                                  % (symbol_file, input_name, shape, _last_line(err))) from None
        graph_shapes = dict(zip(sym.list_arguments() + sym.list_auxiliary_states(), arg_shapes + aux_shapes))
        for n in wanted:
            found = index[by_name[n]][0]
            if graph_shapes.get(n) and tuple(graph_shapes[n]) != found:
                raise CheckpointError('%s: parameter %s has shape %s in the file, the graph expects %s for input '
                                      'shape %s' % (where, n, found, tuple(graph_shapes[n]), shape))
    arrays = _read_arrays(params_file, index)
    _check_finite(params_file, arrays, allow_non_finite)
    block = mx.gluon.SymbolBlock(sym, mx.sym.var(input_name, dtype=input_dtype) if input_dtype
                                 else mx.sym.var(input_name))
    block.collect_params().load_dict({n: mx.nd.array(arrays[k], dtype=arrays[k].dtype) for n, k in by_name.items()},
                                     ctx=ctx, cast_dtype=True, dtype_source='saved')
    return block
