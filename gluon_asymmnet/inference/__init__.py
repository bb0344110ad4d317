"""CPU inference backends for the models, and a side-by-side benchmark of them.

Backends (:data:`BACKENDS`, rows of :data:`~gluon_asymmnet.inference.backends.REGISTRY`):

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

Every backend but ``mxnet`` runs the network's deployment form by default
(:mod:`gluon_asymmnet.deploy`: the same logits without the feature-reuse
concat, BatchNorm folded, channels padded so that oneDNN and onnxruntime keep
their blocked layouts; ``onnxruntime`` also with :mod:`gluon_asymmnet.export.ort_layout`), in the
form of its :class:`Backend` row; ``build_predictor(..., deploy=False)`` runs
the network's own graph.

Each backend becomes a :class:`Predictor` (:func:`build_predictor`): a
callable from float32 NCHW NumPy batches to logits. :func:`benchmark` times
them interleaved, in one process, and checks each against the float32 Gluon
network.

Modules: :mod:`.graph` (the inference graph), :mod:`.backends` (the registry
and :func:`build_predictor`), :mod:`.quantize` (INT8), :mod:`.ort` (ONNX and
onnxruntime), :mod:`.child` (steps run in a fresh interpreter),
:mod:`.predictor`, :mod:`.timing` (interleaved rounds, per-operator time) and
:mod:`.benchmark`.
"""
from .backends import BACKENDS, INT8_BACKENDS, REGISTRY, Backend, BuildSpec, build_predictor, get_backend
from .benchmark import benchmark, format_benchmark, operator_profile
from .graph import inference_symbol, network_symbol, structural_layers, symbol_block
from .ort import export_onnx
from .predictor import BackendError, Predictor
from .quantize import default_fp32_layers, head_layers, quantize_files

__all__ = ['BACKENDS', 'INT8_BACKENDS', 'REGISTRY', 'Backend', 'BuildSpec', 'BackendError', 'Predictor',
           'get_backend', 'build_predictor', 'inference_symbol', 'network_symbol', 'symbol_block',
           'structural_layers', 'export_onnx', 'quantize_files', 'head_layers', 'default_fp32_layers',
           'benchmark', 'format_benchmark', 'operator_profile']
