"""The asymmetrical bottleneck of AsymmNet and the units it is made of.

Yang, Shen, Zhao, "AsymmNet: Towards ultralight convolution neural networks
using asymmetrical bottlenecks", CVPR 2021 Workshops (arXiv 2104.07770).

With ``asymmrate=0`` the block is exactly MobileNetV3's inverted residual, so
one block family builds both networks. Child names (``expand``, ``conv1``,
``se``, ``conv2``; ``conv``/``bn`` inside a unit) follow the authors' released
checkpoint and GluonCV's MobileNetV3, so their files load with plain
``load_parameters``.

Training graphs and inference graphs
------------------------------------
MXNet 1.9.1's oneDNN backend has three backward-pass defects that this block
family meets on CPU (measured with ``DNNL_VERBOSE=1`` on an AVX-512 machine,
where oneDNN stores activations in blocks of 16 channels and, for layers whose
width is not a multiple of 16, in blocks of 8):

* concat: the backward pass cuts the incoming gradient into sub-memories at
  the inputs' channel offsets. AsymmNet's offsets are multiples of 8 but often
  not of 16, so a gradient in 16-channel blocks cannot be cut and training
  aborts ("could not construct a sub-memory", or SIGFPE when an input is
  narrower than a block). With 8-channel blocks (``DNNL_MAX_CPU_ISA=AVX2``)
  the same network trains.
* BatchNorm: the backward pass reorders a gradient in plain layout to the
  data's layout, but hands a gradient blocked by 8 together with data blocked
  by 16 straight to oneDNN, which then runs its reference kernel (250-480 ms
  per call at batch 8, 100x the optimised one). oneDNN's ReLU backward keeps
  the blocking of the gradient coming from the next 1x1 convolution, so this
  happens in the depthwise unit of a block without SE whose depthwise and
  output widths differ in divisibility by 16 (AsymmNet-L's blocks 2 and 3).
* global average pooling: in SE blocks with ReLU the gradient arrives from
  the 1x1 convolution in a layout unlike the blocked input's, and oneDNN again
  runs its reference kernel (50-170 ms per call at batch 8).

The forward passes of all three are fast and correct. So the blocks build
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
is one.
"""
import contextlib
import math
import threading

from mxnet import autograd, ndarray
from mxnet.gluon import nn
from mxnet.gluon.block import HybridBlock

__all__ = ['make_divisible', 'Act', 'ConvBN', 'SE', 'AsymmBottleneck', 'feature_reuse_concat',
           'channel_shuffle', 'tracing_mode', 'graph_mode', 'TrainInferHybridBlock']

_TRACE = threading.local()
MODES = ('train', 'inference')


@contextlib.contextmanager
def tracing_mode(mode):
    """Trace hybrid graphs for ``'train'`` or ``'inference'`` use inside this context.

    A graph traced for ``'inference'`` uses oneDNN's concat, whose backward
    pass fails (module notes): it must never be differentiated.
    :class:`TrainInferHybridBlock` enters this context around its tracing.
    """
    if mode not in MODES:
        raise ValueError('tracing mode must be one of %s, got %r' % (', '.join(MODES), mode))
    previous = getattr(_TRACE, 'mode', None)
    _TRACE.mode = mode
    try:
        yield
    finally:
        _TRACE.mode = previous


def graph_mode(F):
    """``'train'``, ``'inference'``, or None when the computation may run either way.

    An imperative call (``F`` is ``mx.nd``) knows whether autograd records it.
    A traced graph is cached and may run in both modes unless traced inside
    :func:`tracing_mode`.
    """
    if F is ndarray:
        return 'train' if autograd.is_recording() else 'inference'
    return getattr(_TRACE, 'mode', None)


def make_divisible(v, divisor=8):
    """Round ``v`` up to a multiple of ``divisor`` (the paper's channel rounding)."""
    return int(math.ceil(v / divisor) * divisor)


class Act(HybridBlock):
    """ReLU, hard sigmoid or hard swish, each as few kernels as MXNet allows.

    ``hard_sigmoid(x) = relu6(x + 3) / 6`` is MXNet's single ``hard_sigmoid``
    operator with ``alpha=1/6, beta=0.5``; GluonCV spells it as four element-wise
    operators. The results agree to float32 rounding. ReLU is oneDNN's
    ``Activation``; with ``plain_grad`` and in computations built for
    training it is ``clip(x, 0, inf)``, the same values, whose backward pass
    writes a plain-layout gradient (module notes).
    """

    KINDS = ('relu', 'hard_sigmoid', 'hard_swish')

    def __init__(self, kind, plain_grad=False, **kwargs):
        super().__init__(**kwargs)
        if kind not in self.KINDS:
            raise ValueError('unknown activation %r; expected one of %s' % (kind, ', '.join(self.KINDS)))
        self.kind = kind
        self.plain_grad = plain_grad

    def hybrid_forward(self, F, x):
        if self.kind == 'relu':
            if self.plain_grad and graph_mode(F) == 'train':
                return F.clip(x, 0.0, float('inf'))
            return F.Activation(x, act_type='relu')
        if self.kind == 'hard_swish' and graph_mode(F) != 'train':
            # oneDNN's reshape writes plain layout: one reorder of x instead of one in each
            # of hard_sigmoid and the multiply, which are MXNet kernels (+13% inference).
            x = F.reshape(x, shape=(0, 0, 0, 0))
        gate = F.hard_sigmoid(x, alpha=1.0 / 6, beta=0.5)
        return gate if self.kind == 'hard_sigmoid' else x * gate

    def __repr__(self):
        return '%s(%s)' % (self.__class__.__name__, self.kind)


class ConvBN(HybridBlock):
    """Convolution without bias, BatchNorm, optional activation (children ``conv``, ``bn``).

    ``plain_grad`` is passed to :class:`Act`.
    """

    def __init__(self, channels, kernel=1, stride=1, groups=1, act=None, in_channels=0,
                 plain_grad=False, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.conv = nn.Conv2D(channels, kernel, strides=stride, padding=kernel // 2,
                                  groups=groups, use_bias=False, in_channels=in_channels)
            self.bn = nn.BatchNorm(in_channels=channels)
            self.act = Act(act, plain_grad) if act else None

    def hybrid_forward(self, F, x):
        x = self.bn(self.conv(x))
        return self.act(x) if self.act is not None else x


class SE(HybridBlock):
    """Squeeze-and-excitation: pool, 1x1 conv, ReLU, 1x1 conv, hard sigmoid, rescale.

    With ``mean_pool`` the global average pooling of computations built for
    training is ``mean`` over H and W, whose backward pass MXNet runs itself;
    for input in oneDNN's blocked layout (after oneDNN's ReLU) oneDNN's pooling
    backward would run its reference kernel (module notes).
    """

    def __init__(self, channels, mean_pool=False, **kwargs):
        super().__init__(**kwargs)
        squeeze = make_divisible(channels // 4)
        self.mean_pool = mean_pool
        with self.name_scope():
            self.conv1 = nn.Conv2D(squeeze, 1, use_bias=True, in_channels=channels)
            self.conv2 = nn.Conv2D(channels, 1, use_bias=True, in_channels=squeeze)

    def hybrid_forward(self, F, x):
        if self.mean_pool and graph_mode(F) == 'train':
            w = F.mean(x, axis=(2, 3), keepdims=True)
        else:
            w = F.Pooling(x, kernel=(1, 1), global_pool=True, pool_type='avg')
        w = F.relu(self.conv1(w))
        w = F.hard_sigmoid(self.conv2(w), alpha=1.0 / 6, beta=0.5)
        return F.broadcast_mul(x, w)


def feature_reuse_concat(F, x, e, asymmrate):
    """``[x] * r + [e] + [x] * r`` along channels: the block input reused around the expansion.

    Unless the computation is known to run forward only (:func:`graph_mode`),
    the concat names the channel axis as ``dim=-3``: MXNet sends only concats
    with ``dim > 0`` to oneDNN, whose backward pass fails on AsymmNet's channel
    offsets (module notes), so MXNet's own concat runs forward and backward.
    Forward-only computations use oneDNN's concat (``dim=1``). The values are
    the same.
    """
    parts = [x] * asymmrate + [e] + [x] * asymmrate
    return F.concat(*parts, dim=1 if graph_mode(F) == 'inference' else -3)


def channel_shuffle(F, x, groups, channels):
    """Channel shuffle of an NCHW tensor with ``channels`` channels in ``groups`` groups.

    View as ``(N, groups, channels / groups, H * W)``, swap axes 1 and 2, view
    back: output channel ``i * groups + j`` is input channel
    ``j * channels / groups + i``. Only reshape codes 0 and -1, ``swapaxes``
    and ``reshape_like`` are used, so the graph stays static for any batch size
    and exports to ONNX. (``transpose`` would export more simply, but its
    oneDNN backward fails here: "could not create a primitive descriptor for a
    reorder primitive".)
    """
    y = F.reshape(x, shape=(0, groups, channels // groups, -1))
    return F.reshape_like(F.swapaxes(y, 1, 2), x)


class TrainInferHybridBlock(HybridBlock):
    """A HybridBlock that, hybridized, keeps one cached graph per autograd mode.

    Calls under ``autograd.record()`` run a graph traced for ``'train'``,
    other calls one traced for ``'inference'`` (:func:`tracing_mode`), so the
    blocks of this module pick the kernels that are fast and correct for each
    (module notes). Both graphs share the parameters; each is traced on its
    first use and cached with the ``hybridize`` flags; ``hybridize``, ``cast``
    or a new child drops both. A graph built outside a call (``optimize_for``,
    ``infer_shape``) is traced for either mode and serves training. ``export``
    writes the inference graph (``mode='train'``: the training graph); ``save_parameters`` and ``export`` wait for
    pending computation first.
    """

    _CACHE_STATE = ('_cached_graph', '_cached_op', '_cached_op_args')

    def _call_cached_op(self, *args):
        mode = 'train' if autograd.is_recording() else 'inference'
        current = getattr(self, '_cache_mode', None)
        if current is None and self._cached_op is not None:
            current = 'train'
        if mode != current:
            caches = getattr(self, '_mode_caches', {})
            if current is not None:
                caches[current] = tuple(getattr(self, k) for k in self._CACHE_STATE)
            saved = caches.pop(mode, None)
            if saved is None:
                HybridBlock._clear_cached_op(self)
            else:
                for k, v in zip(self._CACHE_STATE, saved):
                    setattr(self, k, v)
            self._mode_caches, self._cache_mode = caches, mode
        with tracing_mode(mode):
            return super()._call_cached_op(*args)

    def _clear_cached_op(self):
        super()._clear_cached_op()
        self._mode_caches, self._cache_mode = {}, None

    def save_parameters(self, filename, deduplicate=False):
        """:meth:`Block.save_parameters` after all pending computation has finished.

        A static-alloc graph updates BatchNorm's running statistics outside
        the parameters' dependency tracking: saving right after a training
        step (even after ``Trainer.step``) wrote stale statistics (measured).
        """
        ndarray.waitall()
        super().save_parameters(filename, deduplicate)

    def export(self, path, epoch=0, remove_amp_cast=True, mode='inference'):
        """Export the graph of ``mode``, as :meth:`HybridBlock.export` does the cached one.

        ``'inference'`` (default): oneDNN's concat, whose backward fails on
        CPU (module notes), so the exported symbol is for inference only.
        ``'train'``: the training graph (MXNet's concat on ``dim=-3``, ``clip``
        and ``mean``), the same values; an imported copy can be trained on a
        oneDNN CPU. MXNet's ONNX exporter writes its ``mean`` as an invalid
        ReduceMean, so ONNX files come from the inference graph. The cached
        graph of that mode is exported, or one traced for it from the same
        inputs. Pending computation finishes first (see :meth:`save_parameters`).
        """
        if mode not in MODES:
            raise ValueError('export mode must be one of %s, got %r' % (', '.join(MODES), mode))
        ndarray.waitall()
        saved = tuple(getattr(self, k) for k in self._CACHE_STATE)
        try:
            if getattr(self, '_cache_mode', None) != mode and self._cached_graph:
                cached = getattr(self, '_mode_caches', {}).get(mode)
                if cached is not None:
                    self._cached_graph = cached[0]
                else:
                    inputs = self._cached_graph[0]
                    self._cached_graph = ()
                    with tracing_mode(mode):
                        self._get_graph(*inputs)
            return super().export(path, epoch, remove_amp_cast)
        finally:
            for k, v in zip(self._CACHE_STATE, saved):
                setattr(self, k, v)


class AsymmBottleneck(HybridBlock):
    """Asymmetrical bottleneck (AsymmNet, CVPR 2021 Workshops, section 3).

    ``1x1 expand (c_in -> exp - r*c_in)`` -> concat ``[x]*r + [e] + [x]*r``
    (-> optional channel shuffle) -> ``kxk depthwise`` -> optional SE ->
    ``1x1 linear`` -> residual add when shapes allow.

    Parameters
    ----------
    in_channels, exp, out_channels : int
        Block input width, the config's expansion size, output width.
    kernel, stride : int
        Depthwise kernel size and stride.
    use_se : bool
        Squeeze-and-excitation after the depthwise convolution.
    act : str
        ``'relu'`` or ``'hard_swish'``.
    asymmrate : int
        Copies of the input reused on each side of the expansion; 0 gives
        MobileNetV3's inverted residual.
    shuffle_groups : int
        Channel shuffle groups after the concat; 0 or 1 is off.
    where : str
        The block's place in the network, used in error messages.
    """

    def __init__(self, in_channels, exp, out_channels, kernel, stride, use_se, act,
                 asymmrate=1, shuffle_groups=0, where='block', **kwargs):
        super().__init__(**kwargs)
        r = asymmrate
        self.asymmrate = r
        self.expands = exp > max(in_channels, r * in_channels)
        if self.expands:
            mid = exp + r * in_channels
        elif exp == in_channels:
            mid = in_channels
        else:
            raise ValueError(
                '%s: cannot build an asymmetrical bottleneck with input %d, expansion %d, '
                'asymmrate %d: the expansion must exceed max(input, asymmrate * input) = %d '
                '(or equal the input for a block without expansion); '
                'choose a smaller asymmrate or a larger width multiplier'
                % (where, in_channels, exp, r, max(in_channels, r * in_channels)))
        self.shuffle_groups = shuffle_groups if (shuffle_groups > 1 and r > 0 and self.expands) else 0
        if self.shuffle_groups and mid % self.shuffle_groups:
            raise ValueError(
                '%s: shuffle_groups=%d does not divide the %d channels after feature reuse '
                '(%d expanded + 2 x %d x %d reused)'
                % (where, shuffle_groups, mid, exp - r * in_channels, r, in_channels))
        self.residual = in_channels == out_channels and stride == 1
        self.mid_channels = mid
        with self.name_scope():
            self.expand = (ConvBN(exp - r * in_channels, 1, act=act, in_channels=in_channels)
                           if self.expands else None)
            # oneDNN blocks a width by 16 if 16 divides it, else by 8 (AVX-512). When the
            # depthwise and the linear width differ in that, the linear conv's backward hands
            # ReLU and BatchNorm a gradient blocked unlike the data (module notes).
            self.conv1 = ConvBN(mid, kernel, stride, groups=mid, act=act, in_channels=mid,
                                plain_grad=not use_se and (mid % 16 == 0) != (out_channels % 16 == 0))
            self.se = SE(mid, mean_pool=act == 'relu') if use_se else None
            self.conv2 = ConvBN(out_channels, 1, in_channels=mid)

    def hybrid_forward(self, F, x):
        out = x
        if self.expand is not None:
            out = self.expand(x)
            if self.asymmrate:
                out = feature_reuse_concat(F, x, out, self.asymmrate)
            if self.shuffle_groups:
                out = channel_shuffle(F, out, self.shuffle_groups, self.mid_channels)
        out = self.conv1(out)
        if self.se is not None:
            out = self.se(out)
        out = self.conv2(out)
        # elemwise_add is oneDNN's sum in both imperative and symbolic calls; ``+`` on NDArrays
        # is broadcast_add, whose plain output then meets blocked ones in the next concat
        # (oneDNN's reference concat kernel, 100 ms at batch 32).
        return F.elemwise_add(out, x) if self.residual else out
