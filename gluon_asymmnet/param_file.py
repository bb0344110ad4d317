"""The safe reader of MXNet parameter files (NDArray lists): never ``mx.nd.load``, never a pickle.

``mx.nd.load`` trusts the sizes written in the file, and a damaged header can
crash the process (a shape of ``ndim = -1`` is a segmentation fault in MXNet
1.9.1, a declared dimension of 2**40 an allocation of that size) instead of
raising. :func:`read_index` parses the structure and checks every size against
the file's length; :func:`load_param_dict` then reads the arrays with NumPy and
refuses NaN or infinite values unless told otherwise. Every reader of a
parameter file goes through this module (:func:`gluon_asymmnet.load_checkpoint`,
:func:`gluon_asymmnet.checkpoint.import_symbol_block`, and any caller that needs
the arrays themselves). Parameter files are NDArray lists, never Python pickles;
nothing here unpickles anything (Trainer ``.states`` files are pickles and are
refused).
"""
import os
import re
import struct
from collections import Counter, OrderedDict

import mxnet as mx
import numpy as np

from .files import not_a_file

__all__ = ['CheckpointError', 'LIST_MAGIC', 'read_index', 'load_param_dict', 'parse_index', 'read_arrays',
           'check_finite', 'check_contexts', 'mxnet_error_line']


class CheckpointError(ValueError):
    """A parameter file that cannot be loaded into the given network."""


LIST_MAGIC = 0x112
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
    return OrderedDict((k, (shape, dtype)) for k, (shape, dtype, _) in parse_index(path, quantized).items())


def parse_index(path, quantized):
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
        if len(head) < 8 or struct.unpack('<Q', head[:8])[0] != LIST_MAGIC:
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


def check_contexts(ctx, where):
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
            count, reason = 0, mxnet_error_line(err)
        beyond = [c for c in gpus if c.device_id >= count]
        if beyond:
            raise CheckpointError('%s: cannot load onto %s: %s; nothing was loaded'
                                  % (where, beyond[0], reason or (
                                      'this MXNet sees no GPU (a CPU-only build, or no GPU visible)' if not count
                                      else 'this MXNet sees %d GPU%s' % (count, 's' if count > 1 else ''))))
    return ctxs


def mxnet_error_line(err):
    """The informative line of an MXNetError (its check or operator), without log prefixes."""
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    chosen = next((line for line in lines if 'Error in operator' in line or 'Check failed' in line),
                  lines[-1] if lines else type(err).__name__)
    return re.sub(r'^(MXNetError: )?(\[[\d:]+\] \S+:\d+: )?', '', chosen)


def read_arrays(path, index):
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


def check_finite(where, arrays, allow_non_finite):
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
    ctx = (check_contexts(ctx, path) or [mx.cpu()])[0]
    arrays = read_arrays(path, parse_index(path, quantized))
    check_finite(path, arrays, allow_non_finite)
    return OrderedDict((k, mx.nd.array(v, ctx=ctx, dtype=v.dtype)) for k, v in arrays.items())
