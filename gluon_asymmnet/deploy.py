"""The deployment form of a network: the same logits in the layers CPU runtimes run fastest.

:func:`deploy_network` builds, from a trained network of this package
(:class:`~gluon_asymmnet.asymmnet.BottleneckNet`: AsymmNet, MobileNetV3,
MobileNetV2 and MobileNetV2-asymm), a new HybridBlock (same dtype and
context) that computes the same logits for inference (exactly in float64;
float32 rounding apart), in shapes that onnxruntime and oneDNN (MXNet) keep in
their fast, blocked layouts:

- Every BatchNorm is folded into the convolution before it (a bias).
- The asymmetrical bottleneck (Yang, Shen, Zhao, CVPR 2021 Workshops) filters
  ``[x] * r + [e] + [x] * r`` (``x`` the block input, ``e`` the expansion)
  with one depthwise convolution, then squeeze-and-excitation and a 1x1
  projection. Each output channel of a depthwise convolution reads one input
  channel, so the convolution splits into one per part of the concatenation:
  one over ``e`` and one over ``x`` for each of its ``2r`` copies, each with
  its channels in its source's order (the channel shuffle only decides which
  original filter goes where, so it disappears into the weights). The SE
  reduction and the projection are linear over the channels: over a
  concatenation they are sums of the same operations over its parts, and the
  SE gate is computed per part. The projections' sum (and the residual) are
  additions that both runtimes fuse into the convolutions (oneDNN's sum
  post-op, onnxruntime's NCHWc ``Sum`` input). Nothing is shuffled, and
  nothing is concatenated unless that is faster: in blocks whose tensors are
  small (:data:`CONCAT_BYTES` for the ``batch_size``) the parts' extra
  operators cost more than a copy, and onnxruntime's INT8 kernels prefer
  ``x``'s copies as one tensor (:data:`NHWC`). Concatenations are ordered so
  that their offsets fall on channel-block boundaries.
- Channel counts are padded with zero channels to multiples of ``align``:
  onnxruntime keeps a convolution in its blocked (NCHWc) layout only when its
  input channels are a multiple of its block (8 with AVX2, 16 with AVX-512).
  Padded filters and biases are zero, so padded channels stay zero and add
  nothing (ReLU, ReLU6 and hard swish all map 0 to 0).

With ``asymmrate`` 0 (MobileNetV3, MobileNetV2) only the folding and the
padding apply. The block structure is read from the blocks' description
(:attr:`~gluon_asymmnet.block.AsymmBottleneck.sources` and ``units``,
``shuffle_groups``, ``mid_channels``, ``residual``; the weights from the
children ``expand``, ``conv1``, ``se``, ``conv2``), so every
first-block variant the builders make is converted as built. The result is for
inference: its BatchNorms are gone, training it trains another network, and
its parameter files load only with its own graph.
:mod:`gluon_asymmnet.export.ort_layout` completes the onnxruntime form in
its ONNX file.
"""
from collections import namedtuple

import numpy as np
import mxnet as mx
from mxnet.gluon import nn
from mxnet.gluon.block import HybridBlock

from .asymmnet import BottleneckNet
from .backend import ops
from .block import Act, AsymmBottleneck

__all__ = ['DeployForm', 'BLOCKED', 'NHWC', 'CONCAT', 'CONCAT_BYTES', 'deploys_by_default', 'deploy_network',
           'DeployNetwork', 'DeployBottleneck']

DeployForm = namedtuple('DeployForm', 'align pad_outputs concat')
DeployForm.__doc__ = """How a deployment form is laid out.

align : int
    Channel counts are padded to multiples of it (16 suits onnxruntime's FP32
    kernels on AVX2 and AVX-512; 1 turns padding off).
pad_outputs : bool
    Pad the outputs of the stem, the bottlenecks and the head as well (False:
    only the widths inside the bottlenecks).
concat : str
    Which parts of each bottleneck are concatenated (:data:`CONCAT`;
    :class:`DeployBottleneck`); with a known batch size, blocks whose
    depthwise output is at most :data:`CONCAT_BYTES` join all.
"""
CONCAT = ('none', 'copies', 'all')
# onnxruntime's FP32 convolutions and oneDNN's keep a tensor in blocks of 16 (AVX-512) or 8 channels
# only when every width is a multiple: every width padded, every part apart.
BLOCKED = DeployForm(16, True, 'none')
# onnxruntime's INT8 kernels work in NHWC, where a concatenation interleaves every pixel and padding
# the block outputs (which x's copies repeat) only adds work, while widths of whole vectors inside the
# blocks still pay (benchmarks/bench_deploy.py --alternatives).
NHWC = DeployForm(16, False, 'copies')
# Largest depthwise output per call (batch x H x W x channels x 4 bytes) at which a bottleneck joins all
# its parts: below it the parts' extra operators cost more than the copy (at batch 1, 224x224, joining
# AsymmNet-L's blocks from 28x28 on was fastest in onnxruntime and MXNet; bench_deploy.py --alternatives).
CONCAT_BYTES = 768 * 1024


def _array(param):
    return param.data().asnumpy().astype(np.float64)


def _fold(conv, bn=None):
    """``conv``'s (weight, bias) with the BatchNorm ``bn`` after it folded in, in float64."""
    weight = _array(conv.weight)
    bias = _array(conv.bias) if conv.bias is not None else np.zeros(weight.shape[0])
    if bn is None:
        return weight, bias
    gamma = np.ones(weight.shape[0]) if bn._kwargs.get('fix_gamma') else _array(bn.gamma)
    scale = gamma / np.sqrt(_array(bn.running_var) + bn._kwargs['eps'])
    return weight * scale.reshape(-1, 1, 1, 1), _array(bn.beta) + (bias - _array(bn.running_mean)) * scale


def _round_up(n, align):
    return -(-n // align) * align


def _pad(a, size, axis):
    """``a`` with zeros appended along ``axis`` up to ``size``."""
    extra = size - a.shape[axis]
    if extra <= 0:
        return a
    shape = list(a.shape)
    shape[axis] = extra
    return np.concatenate([a, np.zeros(shape, a.dtype)], axis=axis)


def _take(a, index, axis):
    """``a``'s entries ``index`` along ``axis``, zero where ``index`` is -1 (padding)."""
    out = np.take(a, np.maximum(index, 0), axis=axis)
    return out * (index >= 0).reshape([-1 if ax == axis else 1 for ax in range(a.ndim)])


def _act(F, x, kind):
    if kind is None:
        return x
    if kind == 'relu':
        return ops.relu(F, x)
    if kind == 'relu6':
        return ops.relu6(F, x)
    if kind == 'hard_swish':
        # Without ops.hard_swish's layout-resetting reshape, which onnxruntime would run as a Reshape.
        return x * ops.hard_sigmoid(F, x)
    raise ValueError('deploy_network: no deployment form of activation %r' % (kind,))


class _Activation(HybridBlock):
    """An activation of the network's trunk, spelled as the runtimes fuse it (:func:`_act`)."""

    def __init__(self, kind, **kwargs):
        super().__init__(**kwargs)
        self.kind = kind

    def hybrid_forward(self, F, x):
        return _act(F, x, self.kind)


class _Convs(nn.HybridSequential):
    """Parallel convolutions, one per part of a bottleneck (called one by one, not in sequence)."""


def _conv(weight, bias, origin, like, stride=(1, 1), pad=(0, 0), groups=1, prefix=None):
    """A Conv2D with bias holding ``weight`` and ``bias``, on the context and in the dtype of the
    parameter ``like``, remembering the structural name of the ``origin`` layer."""
    out, in_per_group, kh, kw = weight.shape
    conv = nn.Conv2D(out, (kh, kw), strides=stride, padding=pad, groups=groups, use_bias=True,
                     in_channels=in_per_group * groups, prefix=prefix)
    conv.initialize(mx.init.Zero(), ctx=like.list_ctx()[0])
    conv.cast(like.dtype)
    conv.weight.set_data(mx.nd.array(weight, dtype=like.dtype))
    conv.bias.set_data(mx.nd.array(bias, dtype=like.dtype))
    conv.origin = origin
    return conv


def _parts(block):
    """Each part's ``(source, mid channel per source channel)`` in the order of the concatenation.

    Sources are ``'x'`` (a copy of the block input) and ``'e'`` (the
    expansion), as the block describes them (:attr:`AsymmBottleneck.sources`);
    the mid channels are the original depthwise convolution's, after any
    channel shuffle.
    """
    mid = block.mid_channels
    sources, sizes = [s for s, _ in block.sources], [n for _, n in block.sources]
    if sum(sizes) != mid:
        raise ValueError('deploy_network: %s concatenates %s channels, not its %d mid channels'
                         % (block.name, ' + '.join(map(str, sizes)), mid))
    owner = np.repeat(np.arange(len(sizes)), sizes)  # concatenation channel -> part
    position = np.concatenate([np.arange(n) for n in sizes])  # -> channel within its source
    g = block.shuffle_groups
    k = np.arange(mid)
    # ops.channel_shuffle: output channel k is input channel (k % g) * (mid / g) + k // g.
    concat_of = (k % g) * (mid // g) + k // g if g else k
    parts = []
    for p, (source, size) in enumerate(zip(sources, sizes)):
        mids = np.empty(size, np.int64)
        mine = owner[concat_of] == p
        mids[position[concat_of[mine]]] = np.nonzero(mine)[0]
        parts.append((source, mids))
    return parts


class DeployBottleneck(HybridBlock):
    """An asymmetrical bottleneck (or inverted residual) in deployment form (module notes).

    Children: ``expand`` (a convolution, or None), ``dw``, ``proj`` and, with
    squeeze-and-excitation, ``se.reduce`` and ``se.gate``: parallel
    convolutions, one per group of parts (:attr:`sources` names each group's
    sources).

    Parameters
    ----------
    block : AsymmBottleneck
    in_width, out_width : int
        Padded channels of the block's input and output.
    concat : str
        ``'none'``: every part apart; ``'copies'``: the ``2r`` copies of
        ``x`` as one tensor (their filters in one depthwise convolution), the
        expansion apart; ``'all'``: one tensor ``[x] * 2r + [e]``.
    align : int
    path : str
        The block's structural name in the original network (``features.K``).
    """

    def __init__(self, block, in_width, out_width, concat='none', align=16, path='', **kwargs):
        super().__init__(**kwargs)
        like = block.conv1.conv.weight
        self.residual = block.residual
        units = block.units
        self.act = units['conv1'].act
        self.expand_act = units['expand'].act if 'expand' in units else None
        width = {'x': in_width}
        with self.name_scope():
            self.expand = None
            if block.expand is not None:
                weight, bias = _fold(block.expand.conv, block.expand.bn)
                width['e'] = _round_up(weight.shape[0], align)
                self.expand = _conv(_pad(_pad(weight, in_width, 1), width['e'], 0), _pad(bias, width['e'], 0),
                                    path + '.expand.conv', like, prefix='expand_')
            # Each part's filters, in its source's (padded) channel order; -1 marks padding.
            parts = []
            for source, mids in _parts(block):
                index = np.full(width[source], -1)
                index[:len(mids)] = mids
                parts.append((source, index))
            # Joined parts: x's copies, then (with 'all') the expansion; each is padded to align, so
            # every offset in the concatenation falls on a channel-block boundary.
            joined = [p for p in parts if p[0] == 'x'] if concat in ('copies', 'all') else []
            apart = [p for p in parts if p[0] != 'x'] if joined else parts
            if concat == 'all':
                joined, apart = joined + apart, []
            if len(joined) > 1:
                parts = [(tuple(s for s, _ in joined), np.concatenate([i for _, i in joined]))] + apart
            self.sources = [source if isinstance(source, tuple) else (source,) for source, _ in parts]
            wd, bd = _fold(block.conv1.conv, block.conv1.bn)
            wp, bp = _fold(block.conv2.conv, block.conv2.bn)
            dw = units['conv1']
            self.dw, self.proj = _Convs(prefix='dw_'), _Convs(prefix='proj_')
            for n, (_, index) in enumerate(parts):
                self.dw.add(_conv(_take(wd, index, 0), _take(bd, index, 0), path + '.conv1.conv', like,
                                  (dw.stride,) * 2, (dw.kernel // 2,) * 2, len(index), 'dw%d_' % n))
                # The projection's bias once, in the first part.
                self.proj.add(_conv(_pad(_take(wp, index, 1), out_width, 0),
                                    _pad(bp if n == 0 else np.zeros_like(bp), out_width, 0), path + '.conv2.conv',
                                    like, prefix='proj%d_' % n))
            self.se = None
            if block.se is not None:
                w1, b1 = _fold(block.se.conv1)
                w2, b2 = _fold(block.se.conv2)
                squeeze = _round_up(w1.shape[0], align)
                w1, b1, w2 = _pad(w1, squeeze, 0), _pad(b1, squeeze, 0), _pad(w2, squeeze, 1)
                self.se = nn.HybridBlock(prefix='se_')
                with self.se.name_scope():
                    self.se.reduce, self.se.gate = _Convs(prefix='reduce_'), _Convs(prefix='gate_')
                for n, (_, index) in enumerate(parts):
                    self.se.reduce.add(_conv(_take(w1, index, 1), b1 if n == 0 else np.zeros_like(b1),
                                             path + '.se.conv1', like, prefix='se_reduce%d_' % n))
                    self.se.gate.add(_conv(_take(w2, index, 0), _take(b2, index, 0), path + '.se.conv2', like,
                                           prefix='se_gate%d_' % n))

    def hybrid_forward(self, F, x):
        source = {'x': x}
        if self.expand is not None:
            source['e'] = _act(F, self.expand(x), self.expand_act)
        inputs = [source[s[0]] if len(s) == 1 else ops.aligned_concat(F, *[source[k] for k in s])
                  for s in self.sources]
        out = [_act(F, dw(v), self.act) for dw, v in zip(self.dw, inputs)]
        if self.se is not None:
            # relu(W1 [p_1; p_2; ...] + b1) = relu(sum_i W1_i p_i + b1): one reduction per part, summed.
            s = None
            for reduce, d in zip(self.se.reduce, out):
                p = reduce(ops.global_pool(F, d))
                s = p if s is None else ops.residual_add(F, p, s)
            s = ops.relu(F, s)
            out = [ops.channel_scale(F, d, ops.hard_sigmoid(F, gate(s))) for d, gate in zip(out, self.se.gate)]
        y = x if self.residual else None
        for proj, d in zip(self.proj, out):
            y = proj(d) if y is None else ops.residual_add(F, proj(d), y)
        return y


class DeployNetwork(HybridBlock):
    """:func:`deploy_network`'s result: ``features`` and ``output``, as in the network it came from.

    ``features`` children keep the original indices as names (a folded
    BatchNorm or a dropout leaves its index out), so structural names such as
    ``features.4`` name the same block in both. ``preprocess_config`` is the
    network's.
    """

    def __init__(self, net, batch_size=None, input_size=224, form=BLOCKED, **kwargs):
        super().__init__(**kwargs)
        align, pad_outputs, concat = form
        out_align = align if pad_outputs else 1
        self.form, self.batch_size = form, batch_size
        self.preprocess_config = getattr(net, 'preprocess_config', None)
        layers = list(net.features._children.items())
        like = layers[0][1].weight
        size = (input_size, input_size) if np.isscalar(input_size) else tuple(input_size)
        with self.name_scope():
            self.features = nn.HybridSequential(prefix='features_')
            width, i = 3, 0
            while i < len(layers):
                name, layer = layers[i]
                path = 'features.' + name
                if isinstance(layer, nn.Conv2D):
                    bn = None
                    if i + 1 < len(layers) and isinstance(layers[i + 1][1], nn.BatchNorm):
                        bn = layers[i + 1][1]
                        i += 1
                    weight, bias = _fold(layer, bn)
                    out = _round_up(weight.shape[0], out_align)
                    kw = layer._kwargs
                    size = tuple((s + 2 * p - k) // st + 1
                                 for s, p, k, st in zip(size, kw['pad'], kw['kernel'], kw['stride']))
                    layer = _conv(_pad(_pad(weight, width, 1), out, 0), _pad(bias, out, 0), path, like, kw['stride'],
                                  kw['pad'], kw['num_group'], 'conv%s_' % name)
                    width = out
                elif isinstance(layer, AsymmBottleneck):
                    stride = layer.units['conv1'].stride
                    size = tuple(-(-s // stride) for s in size)
                    out = _round_up(layer.out_channels, out_align)
                    dw_bytes = 4 * (batch_size or 0) * size[0] * size[1] * (layer.mid_channels + 2 * align)
                    joined = 'all' if batch_size is not None and dw_bytes <= CONCAT_BYTES else concat
                    layer = DeployBottleneck(layer, width, out, joined, align, path, prefix='block%s_' % name)
                    width = out
                elif isinstance(layer, Act):
                    layer = _Activation(layer.kind, prefix='act%s_' % name)
                elif isinstance(layer, nn.GlobalAvgPool2D):
                    layer = nn.GlobalAvgPool2D(prefix='pool%s_' % name)
                    layer.origin = path
                    size = (1, 1)
                elif isinstance(layer, nn.Dropout):
                    layer = None
                else:
                    raise ValueError('deploy_network: %s is a %s, which it cannot convert'
                                     % (path, type(layer).__name__))
                if layer is not None:
                    self.features.register_child(layer, name)
                i += 1
            self.output = nn.HybridSequential(prefix='output_')
            for name, layer in net.output._children.items():
                if isinstance(layer, nn.Conv2D):
                    weight, bias = _fold(layer)
                    layer = _conv(_pad(weight, width, 1), bias, 'output.' + name, like, prefix='output%s_' % name)
                elif not isinstance(layer, nn.Flatten):
                    raise ValueError('deploy_network: output.%s is a %s, which it cannot convert'
                                     % (name, type(layer).__name__))
                self.output.register_child(layer, name)

    def hybrid_forward(self, F, x):
        return self.output(self.features(x))

    def layer_names(self, paths):
        """Node names (``<name>_fwd``) of this network's convolutions and poolings made from the
        original network's layers ``paths`` (structural names, e.g. ``features.4.se.conv1``)."""
        wanted, names = set(paths), []

        def walk(block):
            for child in block._children.values():
                if getattr(child, 'origin', None) in wanted:
                    names.append(child.name + '_fwd')
                walk(child)
        walk(self)
        return names


def deploys_by_default(net):
    """Whether the export and the inference backends use ``net``'s deployment form unless told otherwise:
    for every network of this package (it was as fast or faster in every backend measured, MobileNetV2's
    included: ``benchmarks/README.md``, ``bench_deploy.py``)."""
    return isinstance(net, BottleneckNet)


def deploy_network(net, batch_size=None, input_size=224, form=BLOCKED):
    """The deployment form of ``net`` (module notes): same logits, no concat, no shuffle, BN folded.

    Parameters
    ----------
    net : BottleneckNet
        An initialized network of this package (AsymmNet, MobileNetV3,
        MobileNetV2, MobileNetV2-asymm); its parameters are copied, in its
        dtype and context, not shared.
    batch_size : int, optional
        The batch size the form will run. Given, small blocks concatenate
        their parts where that is faster (:data:`CONCAT_BYTES`); None keeps
        the ``form``'s choice in every block (the fastest for large batches).
    input_size : int or (int, int)
        Input height and width (only used with ``batch_size``).
    form : DeployForm
        :data:`BLOCKED` (onnxruntime FP32, oneDNN), :data:`NHWC`
        (onnxruntime INT8) or any other :class:`DeployForm`.

    Returns
    -------
    DeployNetwork
    """
    if not isinstance(net, BottleneckNet):
        raise ValueError('deploy_network takes a network of gluon_asymmnet (AsymmNet, MobileNetV3, MobileNetV2), '
                         'got %s' % type(net).__name__)
    if batch_size is not None and (int(batch_size) != batch_size or batch_size < 1):
        raise ValueError('batch_size must be a positive integer or None, got %r' % (batch_size,))
    form = DeployForm(*form)
    if int(form.align) != form.align or form.align < 1:
        raise ValueError('align must be a positive integer, got %r' % (form.align,))
    if form.concat not in CONCAT:
        raise ValueError('concat must be one of %s, got %r' % (', '.join(CONCAT), form.concat))
    for param in net.collect_params().values():
        if param._data is None:
            raise ValueError('deploy_network: parameter %s is not initialized; load weights first' % param.name)
    return DeployNetwork(net, batch_size, input_size, DeployForm(int(form.align), bool(form.pad_outputs), form.concat),
                         prefix=net.prefix + 'deploy_')
