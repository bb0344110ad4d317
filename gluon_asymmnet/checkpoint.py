"""Load a parameter file of any layout into a network, all or nothing; import an exported graph safely.

The layouts, and how a file's is recognised, are the table of
:mod:`gluon_asymmnet.layouts`; every file is read by the safe reader of
:mod:`gluon_asymmnet.param_file` (never ``mx.nd.load``, never a pickle).
Files saved in float16 (or float64) are cast to the network's dtype on load.
"""
import fnmatch
import json
import os
import re
import struct
from collections import Counter, OrderedDict

import mxnet as mx

from .export_record import recorded_use
from .layouts import LAYOUTS, detect_layout, strip_export
from .param_file import (LIST_MAGIC, CheckpointError, check_contexts, check_finite, load_param_dict, mxnet_error_line,
                         parse_index, read_arrays, read_index)

__all__ = ['CheckpointError', 'LAYOUTS', 'read_index', 'load_param_dict', 'detect_layout', 'load_checkpoint',
           'read_symbol', 'import_symbol_block']

# Parameter names only gluon_asymmnet.deploy's deployment form has (its bottlenecks' per-part convolutions).
_DEPLOYMENT_KEY = re.compile(r'deploy_block\d+_(dw|proj)\d+_weight$')


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
    ctx = check_contexts(ctx, path)
    index = parse_index(path, False)
    if not index:
        raise CheckpointError('%s: holds no parameters' % path)
    name = layout or detect_layout(index, net)
    params, mapping, skipped = LAYOUTS[name].key_map(net, index)
    skipped = list(skipped)
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

    arrays = read_arrays(path, OrderedDict((k, index[k]) for k in mapping.values()))
    check_finite(where, arrays, allow_non_finite)
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
    if raw[:8] == struct.pack('<Q', LIST_MAGIC):
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
        raise CheckpointError('%s: MXNet cannot build this graph: %s' % (path, mxnet_error_line(err))) from None


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
    ctx = check_contexts(ctx, params_file) or [mx.cpu()]
    sym = read_symbol(symbol_file)
    if input_name not in sym.list_inputs():
        raise CheckpointError('%s: the graph has no input named %r; its inputs begin %s'
                              % (symbol_file, input_name, ', '.join(sym.list_inputs()[:3])))
    wanted = [a for a in sym.list_arguments() if a != input_name] + sym.list_auxiliary_states()
    index = parse_index(params_file, quantized)
    by_name = OrderedDict()
    for key in index:
        name = strip_export(key)
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
                                  % (symbol_file, input_name, shape, mxnet_error_line(err))) from None
        graph_shapes = dict(zip(sym.list_arguments() + sym.list_auxiliary_states(), arg_shapes + aux_shapes))
        for n in wanted:
            found = index[by_name[n]][0]
            if graph_shapes.get(n) and tuple(graph_shapes[n]) != found:
                raise CheckpointError('%s: parameter %s has shape %s in the file, the graph expects %s for input '
                                      'shape %s' % (where, n, found, tuple(graph_shapes[n]), shape))
    arrays = read_arrays(params_file, index)
    check_finite(params_file, arrays, allow_non_finite)
    block = mx.gluon.SymbolBlock(sym, mx.sym.var(input_name, dtype=input_dtype) if input_dtype
                                 else mx.sym.var(input_name))
    block.collect_params().load_dict({n: mx.nd.array(arrays[k], dtype=arrays[k].dtype) for n, k in by_name.items()},
                                     ctx=ctx, cast_dtype=True, dtype_source='saved')
    return block
