"""MobileNetV2 and MobileNetV2 with asymmetrical bottlenecks: the config table and one builder.

Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks",
CVPR 2018; Yang, Shen, Zhao, "AsymmNet: Towards ultralight convolution neural
networks using asymmetrical bottlenecks", CVPR 2021 Workshops, whose abstract
calls the asymmetrical bottleneck a drop-in replacement for existing blocks.
The authors back that with ``get_mobilenetv2_asymm`` in their repository's
``models/mobilenetv2.py``: GluonCV's MobileNetV2 with every linear bottleneck
made asymmetrical. Both are built here from :class:`AsymmBottleneck` with
ReLU6 and no squeeze-and-excitation; ``asymmrate=0`` is GluonCV's MobileNetV2.

Layer indices match GluonCV's MobileNetV2 and the authors' code:
``features.0`` stem conv, ``features.1`` its BN, ``features.3`` to
``features.19`` the 17 blocks, ``features.20``/``features.21`` the last 1x1
conv and its BN, ``features.23`` global pooling; ``output.0`` the bias-free
1x1 classifier. Their files load with :func:`gluon_asymmnet.load_checkpoint`
(layouts ``gluoncv-mobilenetv2``, ``gluoncv-mobilenetv2-legacy``,
``authors-mobilenetv2``).
"""
from collections import namedtuple

from mxnet.gluon import nn

from .asymmnet import BlockPlan, BottleneckNet, check_network_args

__all__ = ['V2Row', 'V2_ROWS', 'v2_width', 'last_channels', 'plan_v2_blocks', 'MobileNetV2', 'mobilenetv2',
           'mobilenetv2_asymm']

V2Row = namedtuple('V2Row', 't c n s')

# Table 2 of the MobileNetV2 paper: expansion factor t, output channels c, repeats n, first stride s.
V2_ROWS = tuple(V2Row(*row) for row in [
    (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1),
])

STEM_CHANNELS = 32
LAST_CHANNELS = 1280
KERNEL = 3


def v2_width(channels, multiplier):
    """GluonCV's width rule: ``int(channels * multiplier)``, truncated, no rounding to a multiple of 8."""
    return int(channels * multiplier)


def last_channels(multiplier):
    """The last 1x1 conv's width: 1280, scaled only above multiplier 1 (as GluonCV and the paper)."""
    return v2_width(LAST_CHANNELS, multiplier) if multiplier > 1.0 else LAST_CHANNELS


def plan_v2_blocks(multiplier):
    """Each bottleneck's widths and structure, as GluonCV's and the authors' MobileNetV2 build them.

    A block expands when its row's ``t`` is not 1 (expansion ``c_in * t``)
    and adds its input when ``c_in == c_out`` at stride 1, whatever the
    feature-reuse rate.

    Returns
    -------
    list of BlockPlan
        ``exp`` is the expansion width ``c_in * t`` before feature reuse.
    """
    width = v2_width(STEM_CHANNELS, multiplier)
    plans = []
    for row in V2_ROWS:
        out = v2_width(row.c, multiplier)
        for i in range(row.n):
            stride = row.s if i == 0 else 1
            plans.append(BlockPlan(width, width * row.t, out, KERNEL, stride, False, 'relu6', row.t != 1,
                                   width == out and stride == 1))
            width = out
    return plans


class MobileNetV2(BottleneckNet):
    """MobileNetV2 (CVPR 2018) with asymmetrical bottlenecks; GluonCV's MobileNetV2 when ``asymmrate=0``.

    Every bottleneck is an :class:`~gluon_asymmnet.block.AsymmBottleneck`
    with ReLU6 and no squeeze-and-excitation: a 1x1 expansion to
    ``c_in * t - r * c_in`` channels, the concat ``[x]*r + [e] + [x]*r``, a
    3x3 depthwise convolution over ``c_in * t + r * c_in`` channels, a linear
    1x1 projection, and the residual add where ``c_in == c_out`` at stride 1.
    Blocks with ``t = 1`` (the first) have no expansion and no reuse. Widths
    follow MobileNetV2's rule, ``int(c * multiplier)``; the last conv is 1280
    wide unless ``multiplier > 1``; the classifier is a bias-free 1x1 conv.

    Parameters
    ----------
    multiplier : float
        Width multiplier (at least 1/16: every layer needs a channel).
    asymmrate : int
        Feature-reuse rate of every expanding bottleneck (0: MobileNetV2's
        linear bottleneck); below the expansion factor 6.
    shuffle_groups : int
        Channel shuffle groups after each feature-reuse concat (0 = off; not
        in the authors' network).
    classes : int
        Number of output classes.
    dropout : float
        Dropout before the classifier (0: GluonCV's and the authors' networks
        have none).
    norm_layer, norm_kwargs : optional
        The normalization layer and its arguments (:class:`~gluon_asymmnet.AsymmNet`'s).

    Raises
    ------
    ValueError
        An argument out of range, or a block whose shapes do not fit (naming
        the block and its numbers).
    """

    def __init__(self, multiplier=1.0, asymmrate=0, shuffle_groups=0, classes=1000, dropout=0.0, norm_layer=None,
                 norm_kwargs=None, **kwargs):
        super().__init__(**kwargs)
        check_network_args(multiplier, asymmrate, shuffle_groups, classes, dropout)
        narrowest = min(min(row.c for row in V2_ROWS), STEM_CHANNELS)
        if v2_width(narrowest, multiplier) < 1:
            raise ValueError('multiplier %g leaves the %d-channel layers int(%d * %g) = 0 channels; it must be '
                             'at least 1/%d' % (multiplier, narrowest, narrowest, multiplier, narrowest))
        self.multiplier, self.asymmrate, self.shuffle_groups = multiplier, int(asymmrate), int(shuffle_groups)
        self.classes, self.dropout = int(classes), dropout
        self.norm = dict(norm_layer=norm_layer, norm_kwargs=norm_kwargs)
        name = 'mobilenetv2_asymm' if self.asymmrate else 'mobilenetv2'
        plans = plan_v2_blocks(multiplier)
        stem, last = plans[0].in_channels, last_channels(multiplier)
        with self.name_scope():
            self._add_trunk(stem, plans, last, 'relu6', name)
            self.features.add(nn.GlobalAvgPool2D())
            self._add_classifier(dropout, last, use_bias=False)


def mobilenetv2(multiplier=1.0, classes=1000, dropout=0.0, **kwargs):
    """MobileNetV2 ("MobileNetV2: Inverted Residuals and Linear Bottlenecks", CVPR 2018): GluonCV's
    network at every width (its ``mobilenetv2_*`` files load). See :class:`MobileNetV2`."""
    return MobileNetV2(multiplier, 0, 0, classes, dropout, **kwargs)


def mobilenetv2_asymm(multiplier=1.0, asymmrate=1, shuffle_groups=0, classes=1000, dropout=0.0, **kwargs):
    """MobileNetV2 with asymmetrical bottlenecks (AsymmNet, CVPR 2021 Workshops): the authors'
    ``get_mobilenetv2_asymm(multiplier, asymmrate)``. See :class:`MobileNetV2`."""
    return MobileNetV2(multiplier, asymmrate, shuffle_groups, classes, dropout, **kwargs)
