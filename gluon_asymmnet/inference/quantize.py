"""INT8: which layers stay in float32, calibration, oneDNN quantization and onnxruntime static quantization."""
import fnmatch
import json
import os
import warnings

import mxnet as mx
import numpy as np

from .. import fastops
from ..checkpoint import import_symbol_block
from ..cpu import cpu_has_vnni
from .child import run_child
from .graph import inference_symbol, structural_layers
from .ort import ort_session

__all__ = ['head_layers', 'default_fp32_layers', 'fp32_layers', 'calibration_array', 'quantize_files',
           'mxnet_int8', 'ort_int8']


def head_layers(net):
    """Structural names of the global pooling and the convolutions after it (the 1280-wide conv, the classifier).

    They act on a 1x1 map, so they cost almost nothing, but quantizing the
    pooled vector and their outputs per tensor is what INT8 loses most on
    (figures: ``benchmarks/README.md``). See :func:`default_fp32_layers`.
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
    convolutions, which act on pooled vectors too and cost MXNet's INT8
    accuracy; onnxruntime loses none on them and would run the SE gating
    around them in FP32 as well, at a large cost in speed (figures:
    ``benchmarks/README.md``).
    """
    return head_layers(net) + (['*.se.*'] if backend == 'mxnet-int8' else [])


def fp32_layers(net, patterns):
    """The structural names matching any shell pattern of ``patterns``, and their node names in the graph."""
    layers = structural_layers(net)
    kept = [path for path in layers if any(fnmatch.fnmatchcase(path, p) for p in patterns)]
    return kept, [layers[path] for path in kept]


def calibration_array(calib, shape):
    """``calib`` as a float32 (N, 3, H, W) array at the H, W of ``shape`` (resized when they differ)."""
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

    What ``mxnet-int8`` runs in a child process
    (:func:`~gluon_asymmnet.inference.child.run_child`). ``calib_file`` is a
    ``.npy`` of calibration images, ``excluded_file`` a JSON list of node
    names kept in float32. Returns the number of calibration images used.
    """
    from mxnet.contrib.quantization import quantize_net_v2
    with open(symbol_file) as f:
        if any(op in f.read() for op in fastops.OPS):
            fastops.load()
    calib = np.load(calib_file)
    with open(excluded_file) as f:
        excluded = json.load(f)
    block = import_symbol_block(symbol_file, params_file)
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


def mxnet_int8(net, shape, calib, calib_mode, excluded, folder, fast_ops=False):
    """oneDNN INT8 of the rewritten graph, quantized in a child process; returns (block, info).

    ``excluded``: node names kept in float32.
    """
    calib = calibration_array(calib, shape)
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
    usable = run_child(quantize_files, [os.path.join(folder, n) for n in (
        'fp32-symbol.json', 'fp32.params', 'calib.npy', 'excluded.json', 'int8')] + [calib_mode], 'quantization')
    block = import_symbol_block(os.path.join(folder, 'int8-symbol.json'), os.path.join(folder, 'int8-0000.params'),
                                quantized=True)
    block.hybridize(static_alloc=True, static_shape=True)
    return block, {'calibration_images': int(usable), 'calib_mode': calib_mode}


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


def ort_int8(onnx_path, folder, shape, calib, excluded, threads, spinning, reduce_range=None):
    """onnxruntime static quantization (QDQ, per-channel INT8 weights, UINT8 activations) of an ONNX
    file, calibrated on ``calib``; returns (session, info). ``excluded``: MXNet node names kept in float32."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process
    calib = calibration_array(calib, shape)
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
    # saturates on full-range weights: 7-bit weights avoid it (what it costs in top-1:
    # benchmarks/README.md, bench_fastops.py).
    if reduce_range is None:
        reduce_range = not cpu_has_vnni()
    quantize_static(prepared, quantized, _CalibrationReader(name, calib, 8),
                    quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8, nodes_to_exclude=excluded,
                    calibrate_method=CalibrationMethod.MinMax, reduce_range=reduce_range)
    info = {'calibration_images': len(calib), 'calib_mode': 'minmax', 'reduce_range': reduce_range}
    return ort_session(quantized, threads, spinning), info
