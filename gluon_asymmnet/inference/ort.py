"""The network as ONNX (exported in a child process) and onnxruntime sessions over it."""
import os

import mxnet as mx
import numpy as np

from ..checkpoint import import_symbol_block
from ..export.exporter import export
from .child import run_child
from .predictor import input_shape

__all__ = ['export_onnx', 'export_files', 'ort_session', 'ort_runner']


def export_files(symbol_file, params_file, prefix, height, width):
    """ONNX of a saved symbol + params through :func:`gluon_asymmnet.export.export`; what
    :func:`export_onnx` runs in its child process. Returns the ONNX path."""
    block = import_symbol_block(symbol_file, params_file)
    return export(block, prefix, input_size=(int(height), int(width)), formats=('onnx',), deploy=False)['onnx']


def export_onnx(net, folder, input_size=224):
    """The network (any HybridBlock, e.g. a deployment form) as ONNX, written by
    :func:`gluon_asymmnet.export.export` in a child process, graph as given.

    The graph and parameters are saved here (``folder/mxnet-*``), and the
    ONNX conversion runs in a fresh process (see
    :func:`~gluon_asymmnet.inference.child.run_child`).

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
    block(mx.nd.zeros(input_shape(1, size)))
    base = os.path.join(folder, 'mxnet')
    block.export(base)
    return run_child(export_files, [base + '-symbol.json', base + '-0000.params', os.path.join(folder, 'model'),
                                    size[0], size[1]], 'ONNX export of %s' % (base + '-symbol.json'))


def ort_session(path, threads, spinning=True, profile_prefix=None):
    """An onnxruntime CPU session: all graph optimizations, ``threads`` intra-op threads, one inter-op.

    ``path``: an ONNX file or its bytes. ``profile_prefix``: turn onnxruntime's
    profiler on, writing to files with this prefix (``session.end_profiling()``).
    """
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.add_session_config_entry('session.intra_op.allow_spinning', '1' if spinning else '0')
    if profile_prefix is not None:
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
    return ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])


def ort_runner(session):
    """``run(batch) -> logits`` over a session's first input and output."""
    name = session.get_inputs()[0].name

    def run(x):
        return session.run(None, {name: x})[0]
    return run
