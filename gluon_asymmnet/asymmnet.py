"""AsymmNet and MobileNetV3: one network builder over the config tables.

Yang, Shen, Zhao, "AsymmNet: Towards ultralight convolution neural networks
using asymmetrical bottlenecks", CVPR 2021 Workshops (arXiv 2104.07770);
Howard et al., "Searching for MobileNetV3", ICCV 2019.

Layer indices match the authors' released checkpoint and GluonCV:
``features.0`` stem conv, ``features.1`` its BN, ``features.3...`` the blocks,
then head conv and BN, pooling, the 1280-wide conv, dropout; ``output.0`` the
classifier.
"""
from collections import namedtuple

from mxnet.gluon import nn

from .backend import TrainInferHybridBlock
from .block import Act, AsymmBottleneck, make_divisible

__all__ = ['BlockConfig', 'ARCHS', 'AsymmNet', 'asymmnet_large', 'asymmnet_small',
           'mobilenetv3_large', 'mobilenetv3_small']

BlockConfig = namedtuple('BlockConfig', 'kernel exp out se act stride')

_R, _H = 'relu', 'hard_swish'

# (config rows, head width before scaling). Rows: kernel, expansion, output, SE, activation, stride.
ARCHS = {
    'large': ([BlockConfig(*row) for row in [
        (3, 16, 16, False, _R, 1), (3, 64, 24, False, _R, 2), (3, 72, 24, False, _R, 1),
        (5, 72, 40, True, _R, 2), (5, 120, 40, True, _R, 1), (5, 120, 40, True, _R, 1),
        (3, 240, 80, False, _H, 2), (3, 200, 80, False, _H, 1), (3, 184, 80, False, _H, 1),
        (3, 184, 80, False, _H, 1), (3, 480, 112, True, _H, 1), (3, 672, 112, True, _H, 1),
        (5, 672, 160, True, _H, 2), (5, 960, 160, True, _H, 1), (5, 960, 160, True, _H, 1),
    ]], 960),
    'small': ([BlockConfig(*row) for row in [
        (3, 16, 16, True, _R, 2), (3, 72, 24, False, _R, 2), (3, 88, 24, False, _R, 1),
        (5, 96, 40, True, _H, 2), (5, 240, 40, True, _H, 1), (5, 240, 40, True, _H, 1),
        (5, 120, 48, True, _H, 1), (5, 144, 48, True, _H, 1), (5, 288, 96, True, _H, 2),
        (5, 576, 96, True, _H, 1), (5, 576, 96, True, _H, 1),
    ]], 576),
}

STEM_CHANNELS = 16
LAST_CHANNELS = 1280
# Index of the first block in ``features`` (stem conv, BN, activation before it).
FIRST_BLOCK = 3


class AsymmNet(TrainInferHybridBlock):
    """AsymmNet (CVPR 2021 Workshops); MobileNetV3 when ``asymmrate=0``.

    Parameters
    ----------
    arch : str
        ``'large'`` or ``'small'``.
    multiplier : float
        Width multiplier applied to every layer but the 1280-wide conv.
    asymmrate : int
        Feature-reuse rate of every bottleneck (0 = MobileNetV3).
    shuffle_groups : int
        Channel shuffle groups after each feature-reuse concat (0 = off).
    classes : int
        Number of output classes.
    dropout : float
        Dropout before the classifier (0.2 in the released model).
    """

    def __init__(self, arch='large', multiplier=1.0, asymmrate=1, shuffle_groups=0,
                 classes=1000, dropout=0.2, **kwargs):
        super().__init__(**kwargs)
        if arch not in ARCHS:
            raise ValueError('unknown arch %r; expected one of %s' % (arch, ', '.join(sorted(ARCHS))))
        if not multiplier > 0:
            raise ValueError('multiplier must be > 0, got %r' % (multiplier,))
        if int(asymmrate) != asymmrate or asymmrate < 0:
            raise ValueError('asymmrate must be an integer >= 0, got %r' % (asymmrate,))
        if int(shuffle_groups) != shuffle_groups or shuffle_groups < 0:
            raise ValueError('shuffle_groups must be an integer >= 0, got %r' % (shuffle_groups,))
        if int(classes) != classes or classes < 1:
            raise ValueError('classes must be a positive integer, got %r' % (classes,))
        if not 0 <= dropout < 1:
            raise ValueError('dropout must be in [0, 1), got %r' % (dropout,))
        self.arch, self.multiplier = arch, multiplier
        self.asymmrate, self.shuffle_groups = int(asymmrate), int(shuffle_groups)
        self.classes, self.dropout = int(classes), dropout
        rows, head = ARCHS[arch]
        width = make_divisible(STEM_CHANNELS * multiplier)
        head = make_divisible(head * multiplier)
        with self.name_scope():
            self.features = nn.HybridSequential(prefix='')
            self.features.add(nn.Conv2D(width, 3, strides=2, padding=1, use_bias=False, in_channels=3))
            self.features.add(nn.BatchNorm(in_channels=width))
            self.features.add(Act('hard_swish'))
            for i, row in enumerate(rows):
                out = make_divisible(row.out * multiplier)
                self.features.add(AsymmBottleneck(
                    width, make_divisible(row.exp * multiplier), out, row.kernel, row.stride,
                    row.se, row.act, self.asymmrate, self.shuffle_groups,
                    where='features.%d (block %d of %s, multiplier %g)'
                    % (FIRST_BLOCK + i, i + 1, arch, multiplier)))
                width = out
            self.features.add(nn.Conv2D(head, 1, use_bias=False, in_channels=width))
            self.features.add(nn.BatchNorm(in_channels=head))
            self.features.add(Act('hard_swish'))
            self.features.add(nn.GlobalAvgPool2D())
            self.features.add(nn.Conv2D(LAST_CHANNELS, 1, use_bias=False, in_channels=head))
            self.features.add(Act('hard_swish'))
            if dropout > 0:
                self.features.add(nn.Dropout(dropout))
            self.output = nn.HybridSequential(prefix='output_')
            with self.output.name_scope():
                self.output.add(nn.Conv2D(self.classes, 1, use_bias=True, in_channels=LAST_CHANNELS))
                self.output.add(nn.Flatten())

    @property
    def blocks(self):
        """The bottlenecks, in order."""
        return [b for b in self.features if isinstance(b, AsymmBottleneck)]

    def hybrid_forward(self, F, x):
        return self.output(self.features(x))


def asymmnet_large(multiplier=1.0, asymmrate=1, shuffle_groups=0, classes=1000, dropout=0.2, **kwargs):
    """AsymmNet-Large from "AsymmNet: Towards ultralight convolution neural networks using
    asymmetrical bottlenecks" (CVPR 2021 Workshops). See :class:`AsymmNet`."""
    return AsymmNet('large', multiplier, asymmrate, shuffle_groups, classes, dropout, **kwargs)


def asymmnet_small(multiplier=1.0, asymmrate=1, shuffle_groups=0, classes=1000, dropout=0.2, **kwargs):
    """AsymmNet-Small from "AsymmNet: Towards ultralight convolution neural networks using
    asymmetrical bottlenecks" (CVPR 2021 Workshops). See :class:`AsymmNet`."""
    return AsymmNet('small', multiplier, asymmrate, shuffle_groups, classes, dropout, **kwargs)


def mobilenetv3_large(multiplier=1.0, classes=1000, dropout=0.2, **kwargs):
    """MobileNetV3-Large ("Searching for MobileNetV3", ICCV 2019): AsymmNet-Large with
    asymmrate 0; parameters load from GluonCV's ``mobilenetv3_large`` files."""
    return AsymmNet('large', multiplier, 0, 0, classes, dropout, **kwargs)


def mobilenetv3_small(multiplier=1.0, classes=1000, dropout=0.2, **kwargs):
    """MobileNetV3-Small ("Searching for MobileNetV3", ICCV 2019): AsymmNet-Small with
    asymmrate 0; parameters load from GluonCV's ``mobilenetv3_small`` files."""
    return AsymmNet('small', multiplier, 0, 0, classes, dropout, **kwargs)
