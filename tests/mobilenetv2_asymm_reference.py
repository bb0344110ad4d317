"""A test-only stand-in for the authors' ``get_mobilenetv2_asymm`` (github.com/Spark001/AsymmNet, models/mobilenetv2.py).

Written for the tests from the network's description, not from the package's
blocks, so that the package is compared with something it does not share code
with. It has the authors' parameter names and order: each block registers a
Sequential ``out`` (depthwise conv, BN, ReLU6, projection conv, BN) and, when
it expands, a Sequential ``expand`` (conv, BN, ReLU6) after it, so
``save_parameters`` writes their key layout. ``tests/data/authors_mobilenetv2_asymm_x1.0_r1.logits.npy``
holds what the authors' own code computes for :func:`reference_weights` over
these keys (drawn in this order) and :func:`reference_input`: the tests check
this stand-in against it.

Their structure: the stem conv (32 x multiplier, stride 2), BN, ReLU6; 17
blocks from MobileNetV2's table with widths ``int(c * multiplier)``; a block
with expansion factor ``t != 1`` expands its input ``x`` (``c_in`` channels)
to ``c_in * t - c_in * r`` channels (1x1 conv, BN, ReLU6) and concatenates
``[x] * r + [e] + [x] * r``; then a 3x3 depthwise conv over the result, BN,
ReLU6, a 1x1 conv to ``c_out``, BN; the input is added when ``c_in == c_out``
at stride 1. Then a 1x1 conv to 1280 (``int(1280 * multiplier)`` above 1),
BN, ReLU6, global average pooling, a bias-free 1x1 classifier, flatten.
"""
from mxnet.gluon import nn
from mxnet.gluon.block import HybridBlock

TABLE = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]


def _relu6():
    return nn.HybridLambda(lambda F, x: F.clip(x, 0, 6))


def _unit(seq, channels, kernel=1, stride=1, groups=1, act=True):
    seq.add(nn.Conv2D(channels, kernel, stride, kernel // 2, groups=groups, use_bias=False))
    seq.add(nn.BatchNorm())
    if act:
        seq.add(_relu6())


class _Block(HybridBlock):
    def __init__(self, c_in, c_out, t, stride, r):
        super().__init__()
        self.r, self.skip = (r if t != 1 else 0), (stride == 1 and c_in == c_out)
        mid = c_in * t + (c_in * r if t != 1 else 0)
        with self.name_scope():
            self.out = nn.HybridSequential()
            _unit(self.out, mid, 3, stride, groups=mid)
            _unit(self.out, c_out, act=False)
            self.expand = None
            if t != 1:
                self.expand = nn.HybridSequential()
                _unit(self.expand, c_in * t - c_in * r)

    def hybrid_forward(self, F, x):
        y = x
        if self.expand is not None:
            y = F.concat(*([x] * self.r + [self.expand(x)] + [x] * self.r), dim=1)
        y = self.out(y)
        return y + x if self.skip else y


class AuthorsMobileNetV2Asymm(HybridBlock):
    """The authors' ``get_mobilenetv2_asymm(multiplier, asymmrate)``, by its description (see the module)."""

    def __init__(self, multiplier=1.0, asymmrate=0, classes=1000):
        super().__init__()
        width = int(32 * multiplier)
        with self.name_scope():
            self.features = nn.HybridSequential()
            _unit(self.features, width, 3, 2)
            for t, c, n, s in TABLE:
                for i in range(n):
                    self.features.add(_Block(width, int(c * multiplier), t, s if i == 0 else 1, asymmrate))
                    width = int(c * multiplier)
            _unit(self.features, int(1280 * multiplier) if multiplier > 1 else 1280)
            self.features.add(nn.GlobalAvgPool2D())
            self.output = nn.HybridSequential()
            self.output.add(nn.Conv2D(classes, 1, use_bias=False), nn.Flatten())

    def hybrid_forward(self, F, x):
        return self.output(self.features(x))
