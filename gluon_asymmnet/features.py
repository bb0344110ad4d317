"""Multi-scale feature maps of AsymmNet, MobileNetV3 and MobileNetV2 for downstream tasks.

The paper also uses AsymmNet as a detection and pose backbone. Detection heads
(SSD, FPN, CenterNet) take the feature maps at strides 4, 8, 16 and 32, the way
GluonCV's ``FeatureExtractor`` hands out backbone stages.

Which map represents a stride: the output of the *last* layer of
``net.features`` whose output still has that stride. For strides 4, 8 and 16
that is the last bottleneck before the next stride-2 block (after its residual
add). For stride 32 it is the head's 1x1 conv + BatchNorm + hard swish (960
channels for Large 1.0, 576 for Small 1.0), before global pooling: the widest
stride-32 map, the one GluonCV's MobileNetV3 backbones hand to detection heads. For
MobileNetV2 (and MobileNetV2-asymm) it is the 1280-wide 1x1 conv + BatchNorm +
ReLU6 before global pooling.

The extractor is built from the network's own child blocks, so it shares the
network's parameters (loading a checkpoint into the network fills both), and
it hybridizes like any HybridBlock. Like the network, its calls return only when
oneDNN's weight-layout rewrites are done (see :mod:`.backend.weight_layout`).
"""
import mxnet as mx
from mxnet.gluon import nn

from .backend.weight_layout import WeightLayoutSafeBlock

__all__ = ['FeatureExtractor', 'layer_strides']

# Spatial size for the structural shape inference: a multiple of every stride
# of interest, large enough that the stride-32 map (8 x 8) is not confused with
# the 1 x 1 output of global pooling.
_PROBE = 256


def layer_strides(net):
    """The output stride of every child of ``net.features``.

    Parameters
    ----------
    net : AsymmNet
        A network with a ``features`` HybridSequential.

    Returns
    -------
    list of (int, int)
        ``(stride, channels)`` per child of ``net.features``; global pooling
        and everything after it report stride 0 (no spatial map).
    """
    x = mx.sym.var('data')
    outs = []
    for child in net.features:
        x = child(x)
        outs.append(x)
    _, shapes, _ = mx.sym.Group(outs).infer_shape(data=(1, 3, _PROBE, _PROBE))
    return [(_PROBE // s[2] if s[2] > 1 else 0, s[1]) for s in shapes]


class FeatureExtractor(WeightLayoutSafeBlock):
    """The feature maps of a network at several output strides.

    Parameters
    ----------
    net : AsymmNet
        The network whose layers (and parameters) the extractor reuses.
    strides : tuple of int
        Output strides to return, increasing; each must occur in the network.

    Attributes
    ----------
    strides : tuple of int
    channels : tuple of int
        Channels of each returned map.
    indices : tuple of int
        Index in ``net.features`` of the layer each map comes from.
    """

    def __init__(self, net, strides=(4, 8, 16, 32), **kwargs):
        super().__init__(**kwargs)
        if not hasattr(net, 'features') or not isinstance(net.features, nn.HybridSequential):
            raise TypeError('FeatureExtractor needs a network with a `features` HybridSequential '
                            '(AsymmNet, MobileNetV3, MobileNetV2), got %s' % type(net).__name__)
        strides = tuple(int(s) for s in strides)
        if not strides or list(strides) != sorted(set(strides)):
            raise ValueError('strides must be distinct and increasing, got %r' % (strides,))
        per_layer = layer_strides(net)
        available = sorted({s for s, _ in per_layer if s})
        indices = []
        for s in strides:
            found = [i for i, (layer_stride, _) in enumerate(per_layer) if layer_stride == s]
            if not found:
                raise ValueError('%s has no feature map at stride %d; available strides: %s'
                                 % (type(net).__name__, s, ', '.join(map(str, available))))
            indices.append(found[-1])
        self.strides = strides
        self.indices = tuple(indices)
        self.channels = tuple(per_layer[i][1] for i in indices)
        layers = list(net.features)
        with self.name_scope():
            self.stages = nn.HybridSequential(prefix='')
            start = 0
            for end in indices:
                # The network's own blocks: same Parameter objects, no copies.
                stage = nn.HybridSequential(prefix='')
                for layer in layers[start:end + 1]:
                    stage.add(layer)
                self.stages.add(stage)
                start = end + 1

    def hybrid_forward(self, F, x):
        maps = []
        for stage in self.stages:
            x = stage(x)
            maps.append(x)
        return tuple(maps)

