"""The asymmetrical bottleneck of AsymmNet and the units it is made of.

Yang, Shen, Zhao, "AsymmNet: Towards ultralight convolution neural networks
using asymmetrical bottlenecks", CVPR 2021 Workshops (arXiv 2104.07770).

With ``asymmrate=0`` the block is exactly MobileNetV3's inverted residual (and,
with ReLU6 and no SE, MobileNetV2's linear bottleneck), so one block family
builds all the networks. Child names (``expand``, ``conv1``,
``se``, ``conv2``; ``conv``/``bn`` inside a unit) follow the authors' released
checkpoint and GluonCV's MobileNetV3, so their files load with plain
``load_parameters``.

The blocks compute in the named operations of :mod:`gluon_asymmnet.backend.ops`,
which choose MXNet's kernels (oneDNN's or MXNet's own) for training and for
inference; see :mod:`gluon_asymmnet.backend`.
"""
import math
from collections import OrderedDict, namedtuple
from types import MappingProxyType

from mxnet.gluon import nn
from mxnet.gluon.block import HybridBlock

from .backend import ops

__all__ = ['make_divisible', 'norm', 'Act', 'Unit', 'ConvBN', 'SE', 'AsymmBottleneck', 'feature_reuse_concat']


def make_divisible(v, divisor=8):
    """Round ``v`` up to a multiple of ``divisor`` (the paper's channel rounding)."""
    return int(math.ceil(v / divisor) * divisor)


def norm(channels, norm_layer=None, norm_kwargs=None):
    """The normalization layer over ``channels``: ``norm_layer`` (default ``nn.BatchNorm``) with ``norm_kwargs``.

    GluonCV's models take ``norm_layer``/``norm_kwargs`` so that its scripts can
    inject ``SyncBatchNorm`` (``train_yolo3.py --syncbn``); the structural
    parameter names (``bn.gamma``...) are the same for any of them.
    """
    return (norm_layer or nn.BatchNorm)(in_channels=channels, **(norm_kwargs or {}))


class Act(HybridBlock):
    """ReLU, ReLU6 ``min(max(x, 0), 6)``, hard sigmoid ``relu6(x + 3) / 6`` or hard swish ``x * hard_sigmoid(x)``.

    ``plain_grad`` is passed to :func:`~gluon_asymmnet.backend.ops.relu`.
    """

    KINDS = ('relu', 'relu6', 'hard_sigmoid', 'hard_swish')

    def __init__(self, kind, plain_grad=False, **kwargs):
        super().__init__(**kwargs)
        if kind not in self.KINDS:
            raise ValueError('unknown activation %r; expected one of %s' % (kind, ', '.join(self.KINDS)))
        self.kind = kind
        self.plain_grad = plain_grad

    def hybrid_forward(self, F, x):
        if self.kind == 'relu':
            return ops.relu(F, x, self.plain_grad)
        if self.kind == 'relu6':
            return ops.relu6(F, x)
        if self.kind == 'hard_sigmoid':
            return ops.hard_sigmoid(F, x)
        return ops.hard_swish(F, x)

    def __repr__(self):
        return '%s(%s)' % (self.__class__.__name__, self.kind)


Unit = namedtuple('Unit', 'in_channels channels kernel stride groups act')
Unit.__doc__ = """A convolution + BatchNorm (+ activation) unit of a bottleneck: input and output channels, square
kernel, stride, groups, activation kind (None: linear)."""


class ConvBN(HybridBlock):
    """Convolution without bias, BatchNorm, optional activation (children ``conv``, ``bn``).

    ``plain_grad`` is passed to :class:`Act`; ``norm_layer``/``norm_kwargs`` to :func:`norm`.
    """

    def __init__(self, channels, kernel=1, stride=1, groups=1, act=None, in_channels=0,
                 plain_grad=False, norm_layer=None, norm_kwargs=None, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.conv = nn.Conv2D(channels, kernel, strides=stride, padding=kernel // 2,
                                  groups=groups, use_bias=False, in_channels=in_channels)
            self.bn = norm(channels, norm_layer, norm_kwargs)
            self.act = Act(act, plain_grad) if act else None

    @classmethod
    def of(cls, unit, **kwargs):
        """The :class:`ConvBN` a :class:`Unit` describes."""
        return cls(unit.channels, unit.kernel, unit.stride, unit.groups, unit.act, unit.in_channels, **kwargs)

    def hybrid_forward(self, F, x):
        x = self.bn(self.conv(x))
        return self.act(x) if self.act is not None else x


class SE(HybridBlock):
    """Squeeze-and-excitation: pool, 1x1 conv, ReLU, 1x1 conv, hard sigmoid, rescale.

    ``plain_grad`` is passed to :func:`~gluon_asymmnet.backend.ops.global_pool`.
    """

    def __init__(self, channels, plain_grad=False, **kwargs):
        super().__init__(**kwargs)
        squeeze = make_divisible(channels // 4)
        self.plain_grad = plain_grad
        with self.name_scope():
            self.conv1 = nn.Conv2D(squeeze, 1, use_bias=True, in_channels=channels)
            self.conv2 = nn.Conv2D(channels, 1, use_bias=True, in_channels=squeeze)

    def hybrid_forward(self, F, x):
        w = ops.global_pool(F, x, self.plain_grad)
        w = F.relu(self.conv1(w))
        w = ops.hard_sigmoid(F, self.conv2(w))
        return ops.channel_scale(F, x, w)


def feature_reuse_concat(F, x, e, asymmrate):
    """``[x] * r + [e] + [x] * r`` along channels: the block input reused around the expansion."""
    return ops.channel_concat(F, *([x] * asymmrate + [e] + [x] * asymmrate))


class AsymmBottleneck(HybridBlock):
    """Asymmetrical bottleneck (AsymmNet, CVPR 2021 Workshops, section 3).

    ``1x1 expand (c_in -> exp - r*c_in)`` -> concat ``[x]*r + [e] + [x]*r``
    (-> optional channel shuffle) -> ``kxk depthwise`` -> optional SE ->
    ``1x1 linear`` -> optional residual add.

    Whether the block expands and whether it adds its input are the network
    builder's decisions (the original codes make them differently, see
    ``docs/design.md`` section 8); the block builds what it is told and refuses
    a structure whose shapes do not fit.

    Parameters
    ----------
    in_channels, exp, out_channels : int
        Block input width, the config's expansion size, output width.
    kernel, stride : int
        Depthwise kernel size and stride.
    use_se : bool
        Squeeze-and-excitation after the depthwise convolution.
    act : str
        ``'relu'``, ``'relu6'`` (MobileNetV2) or ``'hard_swish'``.
    asymmrate : int
        Copies of the input reused on each side of the expansion; 0 gives
        MobileNetV3's inverted residual.
    shuffle_groups : int
        Channel shuffle groups after the concat; 0 or 1 is off.
    where : str
        The block's place in the network, used in error messages.
    expands : bool, optional
        Build the 1x1 expansion (``exp - r*c_in`` channels, depthwise width
        ``exp + r*c_in``); without it the input goes straight to the depthwise
        convolution, which needs ``exp == c_in``. Default: the paper's rule,
        ``exp > max(c_in, r*c_in)``.
    residual : bool, optional
        Add the input to the output; needs ``c_in == c_out`` and stride 1.
        Default: wherever those shapes allow.
    norm_layer, norm_kwargs : optional
        The normalization layer of every unit (:func:`norm`; default BatchNorm).

    Attributes
    ----------
    sources : tuple of (str, int)
        What the depthwise convolution reads, in concatenation order (before
        any shuffle): ``('x', c_in)`` for a copy of the input, ``('e',
        channels)`` for the expansion; ``(('x', c_in),)`` without expansion.
    units : mapping
        ``expand`` (when the block expands), ``conv1`` (depthwise) and
        ``conv2`` (linear) as :class:`Unit`: the children are built from
        them, and :mod:`gluon_asymmnet.deploy` reads them.
    """

    def __init__(self, in_channels, exp, out_channels, kernel, stride, use_se, act,
                 asymmrate=1, shuffle_groups=0, where='block', expands=None, residual=None, norm_layer=None,
                 norm_kwargs=None, **kwargs):
        super().__init__(**kwargs)
        r = asymmrate
        self.asymmrate = r
        self.expands = exp > max(in_channels, r * in_channels) if expands is None else bool(expands)
        if self.expands and exp <= r * in_channels:
            raise ValueError(
                '%s: cannot expand input %d to %d channels with asymmrate %d: the %d reused input '
                'channels leave none for the 1x1 expansion' % (where, in_channels, exp, r, r * in_channels))
        if not self.expands and exp != in_channels:
            raise ValueError(
                '%s: cannot build an asymmetrical bottleneck with input %d, expansion %d, '
                'asymmrate %d: the expansion must exceed max(input, asymmrate * input) = %d '
                '(or equal the input for a block without expansion); '
                'choose a smaller asymmrate or a larger width multiplier'
                % (where, in_channels, exp, r, max(in_channels, r * in_channels)))
        mid = exp + r * in_channels if self.expands else in_channels
        self.shuffle_groups = shuffle_groups if (shuffle_groups > 1 and r > 0 and self.expands) else 0
        if self.shuffle_groups and mid % self.shuffle_groups:
            raise ValueError(
                '%s: shuffle_groups=%d does not divide the %d channels after feature reuse '
                '(%d expanded + 2 x %d x %d reused)'
                % (where, shuffle_groups, mid, exp - r * in_channels, r, in_channels))
        shapes_allow = in_channels == out_channels and stride == 1
        self.residual = shapes_allow if residual is None else bool(residual)
        if self.residual and not shapes_allow:
            raise ValueError('%s: a residual add needs input width == output width and stride 1, got %d -> %d '
                             'channels at stride %d' % (where, in_channels, out_channels, stride))
        self.mid_channels = mid
        self.in_channels, self.out_channels = in_channels, out_channels
        expanded = exp - r * in_channels
        self.sources = ((('x', in_channels),) * r + (('e', expanded),) + (('x', in_channels),) * r
                        if self.expands else (('x', in_channels),))
        units = OrderedDict()
        if self.expands:
            units['expand'] = Unit(in_channels, expanded, 1, 1, 1, act)
        units['conv1'] = Unit(mid, mid, kernel, stride, mid, act)
        units['conv2'] = Unit(mid, out_channels, 1, 1, 1, None)
        self.units = MappingProxyType(units)
        bn = dict(norm_layer=norm_layer, norm_kwargs=norm_kwargs)
        with self.name_scope():
            self.expand = ConvBN.of(units['expand'], **bn) if self.expands else None
            self.conv1 = ConvBN.of(units['conv1'], plain_grad=ops.plain_relu_grad(mid, out_channels, use_se), **bn)
            self.se = SE(mid, plain_grad=ops.plain_pool_grad(act)) if use_se else None
            self.conv2 = ConvBN.of(units['conv2'], **bn)

    def hybrid_forward(self, F, x):
        out = x
        if self.expand is not None:
            out = self.expand(x)
            if self.asymmrate:
                out = feature_reuse_concat(F, x, out, self.asymmrate)
            if self.shuffle_groups:
                out = ops.channel_shuffle(F, out, self.shuffle_groups, self.mid_channels)
        out = self.conv1(out)
        if self.se is not None:
            out = self.se(out)
        out = self.conv2(out)
        return ops.residual_add(F, out, x) if self.residual else out
