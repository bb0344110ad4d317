"""The MXNet 1.9.1 / oneDNN backend policy: which kernels the networks run, and how their graphs are rewritten.

The blocks (:mod:`gluon_asymmnet.block`) are written in the small named
operations of :mod:`.ops` (``relu``, ``hard_swish``, ``global_pool``,
``channel_scale``, ``channel_concat``, ``channel_shuffle``, ``residual_add``);
this package decides how each is spelled for MXNet, keeps one cached graph per
mode (:class:`TrainInferHybridBlock`, :mod:`.modes`) and rewrites traced
graphs for inference (:mod:`.rewrite`). The hazards of the stack are listed in
``docs/design.md`` section 7.

Training graphs and inference graphs
------------------------------------
MXNet 1.9.1's oneDNN backend has three backward-pass defects that this block
family meets on CPU (measured with ``DNNL_VERBOSE=1`` on an AVX-512 machine,
where oneDNN stores activations in blocks of 16 channels and, for layers whose
width is not a multiple of 16, in blocks of 8):

1. concat: the backward pass cuts the incoming gradient into sub-memories at
   the inputs' channel offsets. AsymmNet's offsets are multiples of 8 but often
   not of 16, so a gradient in 16-channel blocks cannot be cut and training
   aborts ("could not construct a sub-memory", or SIGFPE when an input is
   narrower than a block). With 8-channel blocks (``DNNL_MAX_CPU_ISA=AVX2``)
   the same network trains.
2. BatchNorm: the backward pass reorders a gradient in plain layout to the
   data's layout, but hands a gradient blocked by 8 together with data blocked
   by 16 straight to oneDNN, which then runs its reference kernel (about 100x
   slower than the optimised one). oneDNN's ReLU backward keeps
   the blocking of the gradient coming from the next 1x1 convolution, so this
   happens in the depthwise unit of a block without SE whose depthwise and
   output widths differ in divisibility by 16 (AsymmNet-L's blocks 2 and 3).
3. global average pooling: in SE blocks with ReLU the gradient arrives from
   the 1x1 convolution in a layout unlike the blocked input's, and oneDNN again
   runs its reference kernel.

Per-operator times: ``benchmarks/README.md`` (``bench_train_infer.py --profile``).

The forward passes of all three are fast and correct. So the operations build
the computation for its mode (:func:`graph_mode`): for training, MXNet's own
kernels where oneDNN's backward fails or crawls (concat on ``dim=-3``; ReLU
as ``clip`` and SE pooling as ``mean`` in the units named above), whose
backward passes write plain layouts; for inference, the oneDNN kernels. Both
compute the same values. Imperative calls know their mode from
``autograd.is_recording()``. A traced graph is cached and may run in either
mode unless traced inside :func:`tracing_mode`: it takes MXNet's concat (the
only choice that is correct for training) and oneDNN's ReLU and pooling (fast
forward, correct but slow backward). :class:`TrainInferHybridBlock` keeps one
cached graph per mode, each traced for its mode; :class:`gluon_asymmnet.AsymmNet`
is one. :func:`inference_rules` rewrite a graph traced for either mode into
the inference one.

Two more choices keep forward passes in oneDNN's layouts (values unchanged):
hard swish reorders its input to plain layout once, and the residual is
oneDNN's sum also in imperative calls (:func:`~.ops.hard_swish`,
:func:`~.ops.residual_add`).
"""
from . import ops
from .hybrid import TrainInferHybridBlock
from .modes import MODES, graph_mode, tracing_mode
from .rewrite import Graph, inference_rules, rewrite_symbol

__all__ = ['ops', 'MODES', 'graph_mode', 'tracing_mode', 'TrainInferHybridBlock', 'Graph', 'inference_rules',
           'rewrite_symbol']
