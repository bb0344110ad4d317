"""CPU inference backends for the models, and a side-by-side benchmark of them.

Backends (:data:`BACKENDS`):

- ``mxnet``: the Gluon network's inference graph as a hybridized static graph
  (``static_alloc``, ``static_shape``), what ``net.hybridize()`` runs.
- ``mxnet-fused``: an inference graph rewritten for oneDNN (see
  :func:`inference_symbol`), then ``optimize_for(backend='MKLDNN')``:
  convolution + BatchNorm (+ residual add) + ReLU fused into one oneDNN
  primitive; hard swish and the SE rescale as the one-pass operators of
  :mod:`gluon_asymmnet.fastops`.
- ``onnxruntime``: the ONNX file of :func:`gluon_asymmnet.export.export` in
  onnxruntime (CPU execution provider, all graph optimizations, one thread per
  physical core).
- ``mxnet-int8``: oneDNN INT8 through ``mxnet.contrib.quantization``,
  calibrated on real images, built on the ``mxnet-fused`` graph.
- ``onnxruntime-int8``: onnxruntime static quantization (QDQ, per-channel
  INT8 weights, UINT8 activations; 7-bit weights on CPUs without VNNI) of
  the exported ONNX file, calibrated on real images.

Each backend becomes a :class:`Predictor`: a callable from float32 NCHW
NumPy batches to logits. :func:`benchmark` times them interleaved, in one
process, and checks each against the float32 Gluon network.
"""
import fnmatch
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings

import mxnet as mx
import numpy as np

from . import fastops
from .cpu import cpu_has_vnni, physical_cores
from .backend import tracing_mode

__all__ = ['BACKENDS', 'INT8_BACKENDS', 'BackendError', 'Predictor', 'physical_cores', 'cpu_has_vnni',
           'inference_symbol', 'build_predictor', 'export_onnx', 'quantize_files', 'predictor_accuracy', 'benchmark',
           'format_benchmark', 'relative_error', 'structural_layers', 'head_layers', 'default_fp32_layers',
           'target_status', 'format_targets', 'operator_profile', 'format_profile']

BACKENDS = ('mxnet', 'mxnet-fused', 'onnxruntime', 'mxnet-int8', 'onnxruntime-int8')
INT8_BACKENDS = ('mxnet-int8', 'onnxruntime-int8')


class BackendError(RuntimeError):
    """A backend that could not be built (its export or quantization failed)."""


def relative_error(found, expected):
    """``max |found - expected| / max |expected|``."""
    return float(np.abs(found - expected).max() / max(float(np.abs(expected).max()), 1e-30))


# ---------------------------------------------------------------------------
# The inference graph


# fastops operators write plain layout, which oneDNN's pooling and concat handle with slow kernels.
PLAIN_OUTPUT_OPS = ('ga_hard_swish', 'ga_channel_scale', 'ga_global_avg_pool')


def _is_hard_sigmoid(node):
    attrs = node.get('attrs', {})
    return (node['op'] == 'hard_sigmoid' and abs(float(attrs.get('alpha', 0.2)) - 1.0 / 6) < 1e-12
            and float(attrs.get('beta', 0.5)) == 0.5)


def _rewrite_nodes(nodes, heads, shapes, onednn_concat=True, fast_ops=False):
    """Rewrite a symbol's JSON nodes in place (see :func:`inference_symbol`); return the heads.

    ``shapes`` maps a node index to the shape of its (first) output.
    """
    ndims = {i: len(shape) for i, shape in shapes.items() if shape is not None}
    alias = {}

    def resolve(entry):
        while entry[0] in alias:
            target = alias[entry[0]]
            entry = [target[0], target[1] if entry[1] == 0 else entry[1], 0]
        return entry

    users = {}
    for i, node in enumerate(nodes):
        for src in node['inputs']:
            users.setdefault(src[0], []).append(i)
    for i, node in enumerate(nodes):
        node['inputs'] = [resolve(e) for e in node['inputs']]
        op, attrs = node['op'], node.get('attrs', {})
        if op == 'relu':
            # oneDNN fuses ``Activation(relu)`` into the convolution; ``relu`` it leaves alone.
            node['op'], node['attrs'] = 'Activation', {'act_type': 'relu'}
        elif op == 'Dropout':
            alias[i] = node['inputs'][0]
        elif fast_ops and op == 'elemwise_mul' and _is_hard_sigmoid(nodes[node['inputs'][1][0]]) \
                and nodes[node['inputs'][1][0]]['inputs'][0] == node['inputs'][0]:
            # block.Act's hard swish: x * hard_sigmoid(x), x often a layout-resetting reshape
            # that the operator library does not need (MXNet hands it plain-layout input).
            src = node['inputs'][0]
            if nodes[src[0]]['op'] == 'Reshape' and nodes[src[0]]['attrs'].get('shape') == '(0, 0, 0, 0)':
                src = nodes[src[0]]['inputs'][0]
            node['op'], node['inputs'] = 'ga_hard_swish', [src]
            node.pop('attrs', None)
        elif fast_ops and op == 'broadcast_mul' and ndims.get(i) == 4 \
                and tuple(shapes.get(node['inputs'][1][0]) or ())[2:] == (1, 1) \
                and tuple(shapes.get(node['inputs'][1][0]))[:2] == tuple(shapes[i])[:2]:
            # block.SE's rescale of (N, C, H, W) by (N, C, 1, 1).
            node['op'] = 'ga_channel_scale'
            node.pop('attrs', None)
        elif fast_ops and op == 'Pooling' and attrs.get('global_pool') == 'True' and attrs.get('pool_type') == 'avg' \
                and nodes[node['inputs'][0][0]]['op'] in PLAIN_OUTPUT_OPS:
            node['op'] = 'ga_global_avg_pool'
            node.pop('attrs', None)
        elif onednn_concat and op == 'Concat' and ndims.get(i) == 4 and int(attrs.get('dim', 1)) == -3:
            # The channel axis named from the end keeps MXNet's own concat (for its backward
            # pass, see gluon_asymmnet.block); dim=1 sends the same concat to oneDNN.
            node['attrs'] = dict(attrs, dim='1')
        elif op == 'squeeze' and attrs.get('axis') == '1':
            concat = nodes[node['inputs'][0][0]]
            parts = [nodes[e[0]] for e in concat['inputs']]
            if (concat['op'] == 'Concat' and concat['attrs'].get('dim') == '2'
                    and users.get(node['inputs'][0][0]) == [i]
                    and all(p['op'] == 'expand_dims' and p['attrs'].get('axis') == '1' for p in parts)
                    and all(len(users[e[0]]) == 1 for e in concat['inputs'])):
                # block.feature_reuse_concat's 5-D concat, which keeps the training backward
                # off oneDNN; inference needs no backward, and a 4-D concat stays in oneDNN.
                concat['inputs'] = [p['inputs'][0] for p in parts]
                concat['attrs'] = dict(concat['attrs'], dim='1' if onednn_concat else '-3')
                alias[i] = node['inputs'][0]
    return [resolve(h) for h in heads]


def inference_symbol(net, data_name='data', input_shape=(1, 3, 224, 224), onednn_concat=None, fast_ops=False):
    """The network's graph, rewritten for fast CPU inference with the same outputs.

    Rewrites of the traced symbol, exact but for the last one's rounding:

    - the feature-reuse concat written so that MXNet's own kernel runs it (for
      the training backward pass, see
      :func:`gluon_asymmnet.block.feature_reuse_concat`: ``dim=-3``, or 5-D
      views ``expand_dims`` -> ``Concat(dim=2)`` -> ``squeeze``) becomes a 4-D
      ``Concat(dim=1)``, which oneDNN runs without leaving its blocked layout
      (with ``onednn_concat``; otherwise one 4-D ``Concat(dim=-3)``, MXNet's);
    - ``relu`` becomes ``Activation(act_type='relu')``, which the oneDNN
      subgraph backend fuses into the preceding convolution;
    - ``Dropout`` (identity at inference) is removed;
    - with ``fast_ops``, hard swish (``x * hard_sigmoid(x)``) becomes
      ``ga_hard_swish``, the squeeze-and-excitation rescale (``broadcast_mul``
      by an (N, C, 1, 1) gate) ``ga_channel_scale`` (both bit-identical) and
      global average pooling of their outputs ``ga_global_avg_pool`` (float32
      rounding): the one-pass operators of :mod:`gluon_asymmnet.fastops`
      (AsymmNet-L 1.2-1.5x faster, ``benchmarks/bench_fastops.py``).

    Parameters
    ----------
    net : HybridBlock
        The network.
    data_name : str
        Name of the input variable.
    input_shape : tuple of int
        The input shape the graph will run (the rewrite needs each tensor's rank).
    onednn_concat : bool, optional
        Concatenate with oneDNN (default: when the batch ``input_shape[0]`` is
        above 1). Measured on AsymmNet-L at 224x224, 2 cores: oneDNN's concat
        is ~15 % faster at batch 32, MXNet's ~20 % faster at batch 1, where
        oneDNN spends more time on its blocked layouts than on the copy.
    fast_ops : bool
        Use :mod:`gluon_asymmnet.fastops` (built and loaded here; raises
        :class:`gluon_asymmnet.fastops.FastOpsError` when it cannot be).

    Returns
    -------
    mxnet.symbol.Symbol
        Its arguments are the network's parameter names.
    """
    sym = net(mx.sym.var(data_name))
    graph = json.loads(sym.tojson())
    nodes = graph['nodes']
    internals = sym.get_internals()
    _, shapes, _ = internals.infer_shape(**{data_name: tuple(input_shape)})
    by_name = dict(zip(internals.list_outputs(), shapes))
    shapes = {i: by_name.get(n['name'] + '_output') for i, n in enumerate(nodes)}
    if onednn_concat is None:
        onednn_concat = input_shape[0] > 1
    if fast_ops:
        fastops.load()
    heads = _rewrite_nodes(nodes, graph['heads'], shapes, onednn_concat, fast_ops)
    # Keep what the heads still reach, in the original (topological) order.
    keep, stack = set(), [h[0] for h in heads]
    while stack:
        i = stack.pop()
        if i not in keep:
            keep.add(i)
            stack.extend(e[0] for e in nodes[i]['inputs'])
    order = sorted(keep)
    new_id = {old: new for new, old in enumerate(order)}
    out_nodes = []
    for old in order:
        node = dict(nodes[old])
        node['inputs'] = [[new_id[e[0]], e[1], e[2] if len(e) > 2 else 0] for e in node['inputs']]
        out_nodes.append(node)
    out = {'nodes': out_nodes, 'heads': [[new_id[h[0]], h[1], 0] for h in heads],
           'arg_nodes': [i for i, n in enumerate(out_nodes) if n['op'] == 'null'],
           'attrs': graph.get('attrs', {})}
    return mx.sym.load_json(json.dumps(out))


def structural_layers(net):
    """Map each convolution's and global pooling's structural name (``features.0``,
    ``features.4.se.conv1``, ``features.21``, ``output.0``) to its node name in the traced graph."""
    layers = {}

    def walk(block, prefix):
        for name, child in block._children.items():
            path = prefix + name
            if isinstance(child, (mx.gluon.nn.Conv2D, mx.gluon.nn.GlobalAvgPool2D)):
                layers[path] = child.name + '_fwd'
            walk(child, path + '.')
    walk(net, '')
    return layers


def _matches(path, patterns):
    return any(fnmatch.fnmatchcase(path, p) for p in patterns)


def head_layers(net):
    """Structural names of the global pooling and the convolutions after it (the 1280-wide conv, the classifier).

    They act on a 1x1 map, so they cost almost nothing, but quantizing the
    pooled vector and their outputs per tensor is what INT8 loses most on
    (measured on MobileNetV3-L trained on the demo digits: top-1 68.2 % FP32;
    fully INT8 29.8 % in MXNet, 56.6 % in onnxruntime; with these in FP32
    66.0 % and 68.2 %). See :func:`default_fp32_layers`.
    """
    names = []
    features = getattr(net, 'features', None)
    if features is not None:
        pooled = False
        for index, child in enumerate(features):
            pooled = pooled or isinstance(child, mx.gluon.nn.GlobalAvgPool2D)
            if pooled and isinstance(child, (mx.gluon.nn.Conv2D, mx.gluon.nn.GlobalAvgPool2D)):
                names.append('features.%d' % index)
    names += [path for path in structural_layers(net) if path.startswith('output.')]
    return names


def default_fp32_layers(net, backend):
    """What an INT8 backend keeps in FP32 unless told otherwise.

    Both: :func:`head_layers`. ``mxnet-int8`` also the squeeze-and-excitation
    convolutions, which act on pooled vectors too (MobileNetV3-L above: 72.7 %
    instead of 66.0 %, 2 % slower); onnxruntime loses no accuracy on them and
    would run the SE gating around them in FP32 as well (3x slower at batch 1).
    """
    return head_layers(net) + (['*.se.*'] if backend == 'mxnet-int8' else [])


def _symbol_block(sym, net, data_name='data'):
    """A SymbolBlock over ``sym`` that shares ``net``'s parameters (no copies)."""
    params = net.collect_params()
    wanted = set(sym.list_arguments() + sym.list_auxiliary_states()) - {data_name}
    missing = sorted(wanted - set(params.keys()))
    if missing:
        raise ValueError('the inference graph needs parameters the network does not have: %s'
                         % ', '.join(missing[:3]))
    # A typed input spares SymbolBlock's type inference its 'cannot decide type' warning.
    return mx.gluon.SymbolBlock(sym, mx.sym.var(data_name, dtype='float32'), params=params)


# ---------------------------------------------------------------------------
# Predictors


class Predictor(object):
    """One backend, ready to run: ``predictor(batch) -> logits`` (NumPy float32).

    Batches of any size are cut into (and padded to) the fixed batch size the
    backend was built for, so static-shape graphs never re-plan.

    Attributes
    ----------
    backend : str
    batch_size : int
    input_size : (int, int)
    precision : str
        ``'fp32'`` or ``'int8'``.
    info : dict
        INT8 backends: ``fp32_layers`` (structural names kept in FP32),
        ``calibration_images``, ``calib_mode``; onnxruntime: ``threads``.
    """

    def __init__(self, backend, run, batch_size, input_size, precision='fp32', info=None):
        self.backend, self.batch_size, self.input_size = backend, batch_size, input_size
        self.precision, self.info = precision, dict(info or {})
        self._run = run

    def run_batch(self, x):
        """Run exactly one batch of the built size (no copies, no padding): what is timed."""
        return self._run(x)

    def __call__(self, x):
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.ndim != 4 or x.shape[1] != 3 or tuple(x.shape[2:]) != tuple(self.input_size):
            raise ValueError('%s predictor built for input (N, 3, %d, %d), got %s'
                             % ((self.backend,) + tuple(self.input_size) + (x.shape,)))
        outs = []
        for start in range(0, x.shape[0], self.batch_size):
            part = x[start:start + self.batch_size]
            n = part.shape[0]
            if n < self.batch_size:
                part = np.concatenate([part, np.zeros((self.batch_size - n,) + part.shape[1:], np.float32)])
            outs.append(np.asarray(self._run(part))[:n])
        return np.concatenate(outs)


def _shape(batch_size, input_size):
    return (batch_size, 3) + tuple(input_size)


def _mxnet_runner(block, ctx):
    def run(x):
        return block(mx.nd.array(x, ctx=ctx)).asnumpy()
    return run


def _use_fast_ops(fast_ops, info):
    """Resolve ``build_predictor``'s ``fast_ops`` (None: when the library builds), noting it in ``info``."""
    if fast_ops is False:
        info['fast_ops'] = False
        return False
    try:
        fastops.load()
    except fastops.FastOpsError as err:
        if fast_ops:
            raise BackendError(str(err)) from err
        warnings.warn('gluon_asymmnet.fastops unavailable, MXNet backends run MXNet\'s slower element-wise '
                      'operators: %s' % err)
        info.update(fast_ops=False, fast_ops_error=str(err))
        return False
    info['fast_ops'] = True
    return True


def _fused_block(net, shape, ctx, fast_ops=False):
    block = _symbol_block(inference_symbol(net, input_shape=shape, fast_ops=fast_ops), net)
    block.hybridize(static_alloc=True, static_shape=True)
    block.optimize_for(mx.nd.zeros(shape, ctx=ctx), backend='MKLDNN', static_alloc=True, static_shape=True)
    return block


def _calibration_array(calib, shape):
    if calib is None:
        raise ValueError('INT8 backends need calibration images (calib=): a float32 array '
                         '(N, 3, H, W), preprocessed like the evaluation data')
    calib = np.asarray(calib, dtype=np.float32)
    if calib.ndim != 4 or calib.shape[1] != 3 or len(calib) == 0:
        raise ValueError('calibration images must be a non-empty (N, 3, H, W) array, got shape %s'
                         % (calib.shape,))
    if calib.shape[2:] != shape[2:]:
        calib = mx.nd.contrib.BilinearResize2D(mx.nd.array(calib), height=shape[2], width=shape[3]).asnumpy()
    return calib


def quantize_files(symbol_file, params_file, calib_file, excluded_file, prefix, calib_mode='naive',
                   granularity='channel-wise'):
    """oneDNN INT8 of a saved float32 graph, written as ``prefix-symbol.json`` + ``prefix-0000.params``.

    What ``mxnet-int8`` runs in a child process (see :func:`_run_child`).
    ``calib_file`` is a ``.npy`` of calibration images, ``excluded_file`` a
    JSON list of node names kept in float32.
    """
    from mxnet.contrib.quantization import quantize_net_v2
    with open(symbol_file) as f:
        if any(op in f.read() for op in fastops.OPS):
            fastops.load()
    calib = np.load(calib_file)
    with open(excluded_file) as f:
        excluded = json.load(f)
    block = mx.gluon.SymbolBlock(mx.sym.load(symbol_file), mx.sym.var('data', dtype='float32'))
    block.collect_params().load(params_file, ctx=mx.cpu())
    # The quantized graph runs any batch size; calibrate in batches of up to 32 images.
    batch = min(32, len(calib))
    usable = (len(calib) // batch) * batch
    data = mx.io.NDArrayIter(mx.nd.array(calib[:usable]), batch_size=batch)
    # int8 throughout: with 'auto', ReLU outputs become uint8 and MXNet 1.9's quantized concat and
    # elemwise_mul reject mixed int8/uint8 inputs. The hard-swish product stays float32: MXNet's
    # quantized elemwise_mul loses most of its precision there (measured).
    with warnings.catch_warnings():
        # quantize_net_v2 builds its SymbolBlock from an untyped input variable.
        warnings.filterwarnings('ignore', message='Cannot decide type')
        qnet = quantize_net_v2(block, quantized_dtype='int8', quantize_mode='full', quantize_granularity=granularity,
                               exclude_layers=excluded, exclude_operators=['elemwise_mul'],
                               calib_data=data, calib_mode=calib_mode, num_calib_examples=usable, ctx=mx.cpu())
    qnet.hybridize()
    qnet(mx.nd.zeros((1,) + calib.shape[1:]))
    qnet.export(prefix)
    return usable


def _mxnet_int8(net, shape, calib, calib_mode, excluded, folder, fast_ops=False):
    """oneDNN INT8 of the rewritten graph, quantized in a child process; returns (block, info)."""
    calib = _calibration_array(calib, shape)
    os.makedirs(folder, exist_ok=True)
    # oneDNN's concat at every batch size: MXNet's own has no quantized form. The fast operators
    # have no quantized form either: they run in float32, as hard_sigmoid and the products would.
    sym = inference_symbol(net, input_shape=shape, onednn_concat=True, fast_ops=fast_ops)
    params = net.collect_params()
    mx.nd.save(os.path.join(folder, 'fp32.params'), {name: params[name].data() for name in
                                                     sym.list_arguments() + sym.list_auxiliary_states()
                                                     if name != 'data'})
    sym.save(os.path.join(folder, 'fp32-symbol.json'))
    np.save(os.path.join(folder, 'calib.npy'), calib)
    with open(os.path.join(folder, 'excluded.json'), 'w') as f:
        json.dump(list(excluded), f)
    usable = _run_child('quantize_files', [os.path.join(folder, n) for n in (
        'fp32-symbol.json', 'fp32.params', 'calib.npy', 'excluded.json', 'int8')] + [calib_mode], 'quantization')
    block = mx.gluon.SymbolBlock(mx.sym.load(os.path.join(folder, 'int8-symbol.json')),
                                 mx.sym.var('data', dtype='float32'))
    block.collect_params().load(os.path.join(folder, 'int8-0000.params'), ctx=mx.cpu(), cast_dtype=True,
                                dtype_source='saved')
    block.hybridize(static_alloc=True, static_shape=True)
    return block, {'calibration_images': int(usable), 'calib_mode': calib_mode}


def _ort_session(path, threads, spinning=True):
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.add_session_config_entry('session.intra_op.allow_spinning', '1' if spinning else '0')
    return ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])


def _ort_runner(session):
    name = session.get_inputs()[0].name

    def run(x):
        return session.run(None, {name: x})[0]
    return run


def _export_files(symbol_file, params_file, prefix, height, width):
    """Helper-side of :func:`export_onnx`, run in a child process."""
    from .export import export
    block = mx.gluon.SymbolBlock(mx.sym.load(symbol_file), mx.sym.var('data', dtype='float32'))
    block.collect_params().load(params_file, ctx=mx.cpu())
    return export(block, prefix, input_size=(int(height), int(width)), formats=('onnx',))['onnx']


_CHILD = """
import sys
from gluon_asymmnet import inference
print(getattr(inference, sys.argv[1])(*sys.argv[2:]))
"""


def _run_child(function, args, what):
    """Run ``inference.<function>(*args)`` in a fresh interpreter and return what it printed.

    Converting to ONNX (MXNet's exporter) and quantizing (``quantize_net_v2``)
    leave the process they ran in slower: every MXNet operator there takes
    longer afterwards (AsymmNet-L fused, batch 1: 11 -> 23-25 ms per call;
    ``relu`` of a small array 0.11 -> 0.17 ms; measured, cause not found).
    Doing both in child processes keeps the benchmark fair to the MXNet
    backends.
    """
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [package_root, os.environ.get('PYTHONPATH')])))
    done = subprocess.run([sys.executable, '-c', _CHILD, function] + [str(a) for a in args], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    if done.returncode != 0:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        raise BackendError('%s failed in its child process: %s' % (what, lines[-1] if lines else
                                                                   'exit status %d' % done.returncode))
    return done.stdout.strip().splitlines()[-1]


def export_onnx(net, folder, input_size=224):
    """The network as ONNX, written by :func:`gluon_asymmnet.export.export` in a child process.

    The graph and parameters are saved here (``folder/mxnet-*``), and the
    ONNX conversion runs in a fresh process (see :func:`_run_child`).

    Returns
    -------
    str
        Path of ``folder/model.onnx``.
    """
    size = (input_size, input_size) if np.isscalar(input_size) else tuple(input_size)
    os.makedirs(folder, exist_ok=True)
    # Copies of the parameters: hybridizing a block that shares them is not ours to do.
    block = mx.gluon.SymbolBlock(net(mx.sym.var('data')), mx.sym.var('data', dtype='float32'))
    params = net.collect_params()
    block.collect_params().load_dict({name: params[name].data().copy() for name in block.collect_params().keys()},
                                     ctx=mx.cpu())
    block.hybridize()
    block(mx.nd.zeros(_shape(1, size)))
    base = os.path.join(folder, 'mxnet')
    block.export(base)
    return _run_child('_export_files', [base + '-symbol.json', base + '-0000.params', os.path.join(folder, 'model'),
                                        size[0], size[1]], 'ONNX export of %s' % (base + '-symbol.json'))


class _CalibrationReader(object):
    """onnxruntime's calibration interface over an array of images."""

    def __init__(self, name, images, batch_size):
        self._batches = [{name: images[i:i + batch_size]} for i in range(0, len(images), batch_size)]

    def get_next(self):
        return self._batches.pop(0) if self._batches else None

    def rewind(self):
        raise NotImplementedError


def _ort_exclusions(graph, outputs):
    """Names of the ONNX nodes to keep in float32 for the MXNet nodes named in ``outputs``.

    A node is found by its output name (the MXNet node name). In QDQ
    format a node left out still gets quantized inputs and outputs when its
    neighbours are quantized, so the non-convolution nodes between it and the
    nearest convolutions (pooling before, activation after) are left out too.
    """
    producer = {o: n for n in graph.node for o in n.output}
    consumers = {}
    for n in graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    keep, stack = {}, [n for n in graph.node if n.output[0] in outputs]
    for n in stack:
        keep[n.name] = n
    while stack:
        n = stack.pop()
        near = [producer[i] for i in n.input if i in producer]
        near += [c for o in n.output for c in consumers.get(o, [])]
        for m in near:
            if m.op_type != 'Conv' and m.name not in keep:
                keep[m.name] = m
                stack.append(m)
    return sorted(keep)


def _ort_int8(onnx_path, folder, shape, calib, excluded, threads, spinning, reduce_range=None):
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process
    calib = _calibration_array(calib, shape)
    prepared = os.path.join(folder, 'model-prepared.onnx')
    quantized = os.path.join(folder, 'model-int8.onnx')
    quant_pre_process(onnx_path, prepared, skip_symbolic_shape=True)
    model = onnx.load(prepared)
    for node in model.graph.node:
        # MXNet's exporter leaves some nodes unnamed; name them after their output, which carries
        # the MXNet node name that exclusions refer to.
        if not node.name:
            node.name = node.output[0]
    onnx.save(model, prepared)
    name = model.graph.input[0].name
    excluded = _ort_exclusions(model.graph, set(excluded))
    # Without VNNI, onnxruntime's u8 x s8 kernels add pairs of products in int16 (vpmaddubsw), which
    # saturates on full-range weights: 7-bit weights avoid it. AsymmNet-L on the demo digits, AVX2:
    # top-1 88.30 % with 8-bit weights, 90.53 % with 7-bit (FP32 90.81 %).
    if reduce_range is None:
        reduce_range = not cpu_has_vnni()
    quantize_static(prepared, quantized, _CalibrationReader(name, calib, 8),
                    quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8, nodes_to_exclude=excluded,
                    calibrate_method=CalibrationMethod.MinMax, reduce_range=reduce_range)
    info = {'calibration_images': len(calib), 'calib_mode': 'minmax', 'reduce_range': reduce_range}
    return _ort_session(quantized, threads, spinning), info


def build_predictor(backend, net, batch_size=1, input_size=224, calib=None, workdir=None, threads=None,
                    calib_mode='naive', exclude=None, onnx_file=None, ort_spinning=True, fast_ops=None,
                    ort_reduce_range=None):
    """Build one backend for a fixed batch size and input size.

    Parameters
    ----------
    backend : str
        One of :data:`BACKENDS`.
    net : HybridBlock
        An initialized network (its parameters are shared, not copied, by the
        MXNet backends; the ONNX ones export it).
    batch_size : int
    input_size : int or (int, int)
    calib : numpy.ndarray, optional
        Calibration images ``(N, 3, H, W)``, preprocessed like the evaluation
        data; required by the INT8 backends (resized when H, W differ).
    workdir : str, optional
        Where ONNX and INT8 files go (default: a new temporary folder).
    threads : int, optional
        onnxruntime intra-op threads (default: physical cores).
    calib_mode : str
        ``mxnet-int8`` calibration; only ``'naive'`` (min/max of the
        calibration outputs): MXNet 1.9.1's ``'entropy'`` thresholds make its
        int8 oneDNN convolution fail ("Expect int8 when data_min < 0.0").
    exclude : sequence of str, optional
        Structural names of convolutions and global poolings to keep in
        float32 (INT8 backends), shell patterns allowed (``'features.0'``,
        ``'*.se.*'``); default :func:`default_fp32_layers`. ``()`` quantizes
        everything.
    onnx_file : str, optional
        The network's ONNX export at this input size (:func:`export_onnx`),
        to skip exporting again.
    ort_spinning : bool
        Let onnxruntime's idle worker threads spin (its default, fastest
        when it runs alone).
    fast_ops : bool, optional
        ``mxnet-fused`` and ``mxnet-int8`` with the operators of
        :mod:`gluon_asymmnet.fastops`. Default: when the library builds
        (else a warning, and ``info['fast_ops_error']`` says why); True
        requires it, False turns it off.
    ort_reduce_range : bool, optional
        ``onnxruntime-int8`` with 7-bit weights; default: when the CPU has
        no VNNI (:func:`cpu_has_vnni`).

    Returns
    -------
    Predictor
    """
    if backend not in BACKENDS:
        raise ValueError('unknown backend %r; choose from %s' % (backend, ', '.join(BACKENDS)))
    if calib_mode != 'naive':
        raise ValueError("calib_mode %r is not supported: MXNet 1.9.1's entropy calibration breaks its int8 "
                         "oneDNN convolution; use 'naive'" % (calib_mode,))
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError('batch_size must be a positive integer, got %r' % (batch_size,))
    size = (input_size, input_size) if np.isscalar(input_size) else tuple(input_size)
    shape = _shape(batch_size, size)
    ctx = mx.cpu()
    threads = threads or physical_cores()
    info = {}
    precision = 'int8' if backend in INT8_BACKENDS else 'fp32'
    patterns = default_fp32_layers(net, backend) if exclude is None else list(exclude)
    layers = structural_layers(net)
    kept = [path for path in layers if _matches(path, patterns)]
    excluded = [layers[path] for path in kept]
    if precision == 'int8':
        info['fp32_layers'] = kept
    if backend == 'mxnet':
        # What net.hybridize() runs outside autograd (block.TrainInferHybridBlock's inference graph).
        with tracing_mode('inference'):
            sym = net(mx.sym.var('data'))
        block = _symbol_block(sym, net)
        block.hybridize(static_alloc=True, static_shape=True)
        run = _mxnet_runner(block, ctx)
    elif backend == 'mxnet-fused':
        block = _fused_block(net, shape, ctx, _use_fast_ops(fast_ops, info))
        run = _mxnet_runner(block, ctx)
    elif backend == 'mxnet-int8':
        folder = os.path.join(workdir or tempfile.mkdtemp(prefix='gluon_asymmnet_int8_'),
                              '%s-b%d-%dx%d' % ((backend, batch_size) + size))
        block, quantized = _mxnet_int8(net, shape, calib, calib_mode, excluded, folder,
                                       _use_fast_ops(fast_ops, info))
        info.update(quantized)
        run = _mxnet_runner(block, ctx)
    else:
        folder = workdir or tempfile.mkdtemp(prefix='gluon_asymmnet_onnx_')
        folder = os.path.join(folder, '%s-%dx%d' % ((backend,) + size))
        os.makedirs(folder, exist_ok=True)
        path = onnx_file or export_onnx(net, folder, size)
        if backend == 'onnxruntime':
            session = _ort_session(path, threads, ort_spinning)
        else:
            session, quantized = _ort_int8(path, folder, shape, calib, excluded, threads, ort_spinning,
                                           ort_reduce_range)
            info.update(quantized)
        info.update(threads=threads, spinning=ort_spinning)
        run = _ort_runner(session)
    run(np.zeros(shape, np.float32))
    return Predictor(backend, run, batch_size, size, precision, info)


# ---------------------------------------------------------------------------
# Accuracy and the benchmark


def predictor_accuracy(predictor, batches):
    """Top-1/top-5 of a predictor over ``(data, label)`` batches, like :func:`evaluate_accuracy`.

    Returns
    -------
    dict
        ``top1``, ``top5`` (fractions) and ``num_samples``.
    """
    if hasattr(batches, 'reset'):
        batches.reset()
    hits1 = hits5 = num = 0
    for data, label in batches:
        logits = predictor(data.asnumpy() if hasattr(data, 'asnumpy') else data)
        label = (label.asnumpy() if hasattr(label, 'asnumpy') else np.asarray(label)).astype(np.int64)
        top = np.argsort(-logits, axis=1)[:, :5]
        hits1 += int((top[:, 0] == label).sum())
        hits5 += int((top == label[:, None]).any(axis=1).sum())
        num += len(label)
    if num == 0:
        raise ValueError('predictor_accuracy: the batches held no sample')
    return {'top1': hits1 / num, 'top5': hits5 / num, 'num_samples': num}


def _time_interleaved(runners, inputs, warmup, repeats):
    """Median seconds per call of each runner; one call of each per round, so load changes hit all."""
    for _ in range(warmup):
        for name, run in runners.items():
            run(inputs)
    times = {name: [] for name in runners}
    for _ in range(repeats):
        for name, run in runners.items():
            # An untimed call first: the previous backend's worker threads may still be spinning
            # (onnxruntime's and OpenMP's pools spin a while before they sleep).
            run(inputs)
            start = time.perf_counter()
            run(inputs)
            times[name].append(time.perf_counter() - start)
    return {name: float(np.median(t)) for name, t in times.items()}


def benchmark(net, backends=BACKENDS, input_size=224, batch_sizes=(1, 32), warmup=5, repeats=20,
              calib=None, eval_batches=None, eval_input_size=None, threads=None, workdir=None,
              calib_mode='naive', exclude=None, seed=0, progress=None, ort_spinning=False):
    """Latency, throughput, error against float32 and accuracy of every backend, side by side.

    Run it with ``MXNET_ENGINE_TYPE=NaiveEngine`` (``eval.py --benchmark``
    and ``benchmarks/bench_inference.py`` set it): with MXNet's default
    threaded engine, AsymmNet-L's fused batch-1 latency went from 11 ms to
    22 ms per call once a batch-32 224x224 graph had run in the same process,
    and stayed there; on the calling thread it stays at 11 ms (measured).
    The engine in use is recorded in ``setup['mxnet_engine']``.

    onnxruntime's worker threads do not spin here (``ort_spinning``): idle
    but spinning, they kept a core busy while the next backend ran, which
    doubled ``mxnet-fused``'s batch-1 time when interleaved (11 -> 22-24 ms;
    onnxruntime's own batch-1 time is ~10-20 % higher without spinning).

    Parameters
    ----------
    net : HybridBlock
        Initialized float32 network (the reference).
    backends : sequence of str
    input_size : int
        Image side for the timings.
    batch_sizes : (int, int)
        Latency batch (median milliseconds per batch) and throughput batch
        (images per second); both timed interleaved across backends.
    warmup, repeats : int
        Untimed calls, then timed rounds (one call of every backend per round).
    calib : numpy.ndarray, optional
        Real, preprocessed calibration images for the INT8 backends.
    eval_batches : iterable of (data, label), optional
        Accuracy data; its images also give the error check's input.
    eval_input_size : int, optional
        Image side of ``eval_batches`` (default ``input_size``).
    threads : int, optional
        Threads of onnxruntime (default physical cores; MXNet takes
        ``OMP_NUM_THREADS``).
    workdir : str, optional
        Where the ONNX files are written.
    calib_mode, exclude
        See :func:`build_predictor`.
    seed : int
        Seed of the random error-check input when no data is given.
    progress : callable, optional
        Called with a message before each step.

    Returns
    -------
    dict
        ``rows``: one dict per backend with ``backend``, ``precision``,
        ``latency_ms``, ``throughput``, ``rel_error``, ``top1``/``top5`` (with
        data), ``info``; and ``setup``: sizes, threads, repeats.
    """
    say = progress or (lambda msg: None)
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown or not backends:
        raise ValueError('unknown backend(s) %s; choose from %s' % (', '.join(unknown), ', '.join(BACKENDS)))
    if len(batch_sizes) != 2:
        raise ValueError('batch_sizes needs (latency batch, throughput batch), got %r' % (batch_sizes,))
    threads = threads or physical_cores()
    workdir = workdir or tempfile.mkdtemp(prefix='gluon_asymmnet_bench_')
    eval_size = eval_input_size or input_size
    rows = {b: {'backend': b, 'precision': 'int8' if b in INT8_BACKENDS else 'fp32'} for b in backends}

    # Error check input: real images when given, else a fixed random batch.
    if eval_batches is not None:
        check = next(iter(eval_batches))[0]
        check = check.asnumpy() if hasattr(check, 'asnumpy') else np.asarray(check, np.float32)
    else:
        check = np.random.RandomState(seed).standard_normal(_shape(batch_sizes[1], (eval_size,) * 2))
        check = check.astype(np.float32)
    reference = net(mx.nd.array(check)).asnumpy()

    cache, onnx_files = {}, {}

    def predictor(b, batch, size):
        if (b, batch, size) not in cache:
            onnx_file = None
            if b.startswith('onnxruntime'):
                if size not in onnx_files:
                    say('exporting ONNX at %dx%d' % (size, size))
                    onnx_files[size] = export_onnx(net, os.path.join(workdir, 'onnx-%d' % size), size)
                onnx_file = onnx_files[size]
            say('building %s (batch %d, %dx%d)' % (b, batch, size, size))
            cache[b, batch, size] = build_predictor(
                b, net, batch, size, calib, os.path.join(workdir, 'b%d-%d' % (batch, size)), threads,
                calib_mode, exclude, onnx_file, ort_spinning)
        return cache[b, batch, size]

    for b in backends:
        p = predictor(b, batch_sizes[1], eval_size)
        rows[b]['rel_error'] = relative_error(p(check), reference)
        rows[b]['info'] = p.info
        if eval_batches is not None:
            say('accuracy of %s' % b)
            acc = predictor_accuracy(p, eval_batches)
            rows[b].update(top1=acc['top1'], top5=acc['top5'], num_samples=acc['num_samples'])
    for key, batch in zip(('latency_ms', 'throughput'), batch_sizes):
        runners = {b: predictor(b, batch, input_size).run_batch for b in backends}
        say('timing batch %d at %dx%d' % (batch, input_size, input_size))
        x = np.random.RandomState(seed + 1).standard_normal(_shape(batch, (input_size,) * 2)).astype(np.float32)
        medians = _time_interleaved(runners, x, warmup, repeats)
        for b, seconds in medians.items():
            rows[b][key] = seconds * 1e3 if key == 'latency_ms' else batch / seconds
    setup = dict(input_size=input_size, eval_input_size=eval_size, batch_sizes=tuple(batch_sizes),
                 warmup=warmup, repeats=repeats, onnxruntime_threads=threads,
                 omp_num_threads=os.environ.get('OMP_NUM_THREADS'), physical_cores=physical_cores(),
                 mxnet_engine=os.environ.get('MXNET_ENGINE_TYPE', 'ThreadedEnginePerDevice'),
                 ort_spinning=ort_spinning)
    return {'rows': [rows[b] for b in backends], 'setup': setup}


def format_benchmark(result, title=None):
    """Render :func:`benchmark`'s result as a Markdown table, speed-ups against ``onnxruntime``/``mxnet``."""
    rows, setup = result['rows'], result['setup']
    base = next((r for r in rows if r['backend'] == 'onnxruntime'), None) or rows[0]
    with_acc = any('top1' in r for r in rows)
    head = ['backend', 'precision', 'latency b%d (ms)' % setup['batch_sizes'][0],
            'throughput b%d (img/s)' % setup['batch_sizes'][1], 'speed vs %s (b%d)' % (base['backend'],
                                                                                    setup['batch_sizes'][1]),
            'rel. error vs FP32']
    if with_acc:
        head += ['top-1', 'top-5']
    lines = []
    if title:
        lines += [title, '']
    lines += ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for r in rows:
        cells = [r['backend'], r['precision'], '%.2f' % r['latency_ms'], '%.1f' % r['throughput'],
                 '%.2fx' % (r['throughput'] / base['throughput']), '%.1e' % r['rel_error']]
        if with_acc:
            cells += ['%.2f %%' % (100 * r['top1']), '%.2f %%' % (100 * r['top5'])] if 'top1' in r else ['', '']
        lines.append('| ' + ' | '.join(cells) + ' |')
    lines.append('')
    lines.append('%dx%d input, medians of %d interleaved rounds after %d warm-up; onnxruntime threads %d, '
                 '%sspinning, OMP_NUM_THREADS %s, MXNet engine %s, %d physical cores.'
                 % (setup['input_size'], setup['input_size'], setup['repeats'], setup['warmup'],
                    setup['onnxruntime_threads'], '' if setup.get('ort_spinning') else 'no ',
                    setup['omp_num_threads'] or 'unset', setup['mxnet_engine'], setup['physical_cores']))
    fast = [r['backend'] for r in rows if r.get('info', {}).get('fast_ops')]
    failed = [r for r in rows if r.get('info', {}).get('fast_ops_error')]
    if fast:
        lines.append('%s with the fused operators of gluon_asymmnet.fastops.' % ', '.join(fast))
    if failed:
        lines.append('gluon_asymmnet.fastops unavailable (%s): %s' % (', '.join(r['backend'] for r in failed),
                                                                     failed[0]['info']['fast_ops_error']))
    return '\n'.join(lines)


def target_status(result, fp32_backends=('mxnet', 'mxnet-fused'), baseline='onnxruntime',
                  int8_speedup=1.5, max_top1_drop=0.01):
    """The issue's two targets, checked on one :func:`benchmark` result.

    1. The project's fastest float32 MXNet path (``fp32_backends``) is at
       least as fast as ``baseline`` (onnxruntime on the exported model).
    2. The fastest INT8 backend is ``int8_speedup`` times as fast as the
       fastest float32 row of the table (onnxruntime included), and its top-1
       is within ``max_top1_drop`` of float32 (when accuracy was measured).

    Each is judged separately at the latency and the throughput batch.

    Returns
    -------
    list of dict
        One per target and batch: ``target``, ``metric``, ``value`` (ratio),
        ``met`` (bool) and ``detail`` (text).
    """
    rows = {r['backend']: r for r in result['rows']}
    b_lat, b_thr = result['setup']['batch_sizes']
    # Speed as "bigger is faster" at each batch.
    speeds = {('latency', b_lat): {b: 1.0 / r['latency_ms'] for b, r in rows.items()},
              ('throughput', b_thr): {b: r['throughput'] for b, r in rows.items()}}
    out = []
    for (metric, batch), speed in speeds.items():
        ours = [b for b in fp32_backends if b in speed]
        if ours and baseline in speed:
            best = max(ours, key=speed.get)
            ratio = speed[best] / speed[baseline]
            out.append(dict(target='fastest FP32 MXNet path >= %s' % baseline, metric='%s b%d' % (metric, batch),
                            value=ratio, met=ratio >= 1.0,
                            detail='%s is %.2fx %s' % (best, ratio, baseline)))
        fp32 = [b for b in speed if rows[b]['precision'] == 'fp32']
        int8 = [b for b in speed if rows[b]['precision'] == 'int8']
        if fp32 and int8:
            best32, best8 = max(fp32, key=speed.get), max(int8, key=speed.get)
            ratio = speed[best8] / speed[best32]
            drop = None
            if 'top1' in rows[best8] and 'top1' in rows[best32]:
                drop = rows[best32]['top1'] - rows[best8]['top1']
            met = ratio >= int8_speedup and (drop is None or drop <= max_top1_drop)
            detail = '%s is %.2fx %s' % (best8, ratio, best32)
            if drop is not None:
                detail += ', top-1 %+.2f points' % (-100 * drop)
            out.append(dict(target='INT8 >= %.1fx fastest FP32, top-1 within %g point' % (int8_speedup,
                                                                                          100 * max_top1_drop),
                            metric='%s b%d' % (metric, batch), value=ratio, met=met, detail=detail))
    return out


def format_targets(status):
    """One line per :func:`target_status` entry."""
    return '\n'.join('%-52s %-16s %s  (%s)' % (s['target'], s['metric'], 'MET' if s['met'] else 'MISSED',
                                               s['detail']) for s in status)


def operator_profile(net, backend='mxnet-fused', batch_size=32, input_size=224, repeats=5, calib=None):
    """Milliseconds per call spent in each MXNet operator of an MXNet backend (MXNet's profiler).

    Bulk execution is switched off while the graph is built and run, so that
    every operator is timed on its own; the per-call wall time is measured
    on a separate, normally built predictor. What the operators do not cover
    is framework overhead (dispatch, synchronisation, memory planning).

    Returns
    -------
    dict
        ``operators``: ``{name: ms per call}``, largest first; ``wall_ms``:
        median wall time per call with bulk execution on.
    """
    if not backend.startswith('mxnet'):
        raise ValueError('operator_profile profiles MXNet backends, not %r' % backend)
    shape = _shape(batch_size, (input_size, input_size))
    x = np.random.RandomState(0).standard_normal(shape).astype(np.float32)
    normal = build_predictor(backend, net, batch_size, input_size, calib)
    wall = _time_interleaved({backend: normal.run_batch}, x, 2, repeats)[backend] * 1e3
    previous = os.environ.get('MXNET_EXEC_BULK_EXEC_INFERENCE')
    os.environ['MXNET_EXEC_BULK_EXEC_INFERENCE'] = '0'
    try:
        p = build_predictor(backend, net, batch_size, input_size, calib)
        p.run_batch(x)
        mx.profiler.set_config(profile_all=True, aggregate_stats=True,
                               filename=os.path.join(tempfile.gettempdir(), 'gluon_asymmnet_profile.json'))
        mx.profiler.dumps(reset=True)
        mx.profiler.set_state('run')
        for _ in range(repeats):
            p.run_batch(x)
        mx.nd.waitall()
        mx.profiler.set_state('stop')
        stats = dict(json.loads(mx.profiler.dumps(format='json', reset=True))['Time'])
    finally:
        if previous is None:
            del os.environ['MXNET_EXEC_BULK_EXEC_INFERENCE']
        else:
            os.environ['MXNET_EXEC_BULK_EXEC_INFERENCE'] = previous
    ops = {name: s['Total'] / repeats for name, s in stats.get('operator', {}).items()
           if name not in ('WaitForVar', 'DeleteVariable') and s['Total'] > 0}
    return {'operators': dict(sorted(ops.items(), key=lambda kv: -kv[1])), 'wall_ms': wall}


def format_profile(profile, title=''):
    """Render :func:`operator_profile` as text, with each operator's share of the operators' total."""
    total = sum(profile['operators'].values())
    lines = [title] if title else []
    lines.append('%-28s %10s %7s' % ('operator', 'ms/call', 'share'))
    for name, ms in profile['operators'].items():
        lines.append('%-28s %10.2f %6.1f%%' % (name, ms, 100 * ms / total))
    lines.append('%-28s %10.2f   (wall time per call with bulk execution: %.2f ms)'
                 % ('all operators', total, profile['wall_ms']))
    return '\n'.join(lines)
