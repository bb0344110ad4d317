"""CenterNet ("Objects as Points", Zhou et al. 2019) over a DUC-upsampled mobile backbone.

GluonCV's ``center_net_mobilenetv3_{large,small}_duc_{voc,coco}``
(``gluoncv/model_zoo/center_net/``) over this package's backbones. The base
network is GluonCV's ``DUCMobilenet``: the backbone's layers before global
pooling (``feature``), then three DUC upsamplings (``upsampling``; large
backbones 512, 256, 256 filters, small ones 512, 256, 128), stride 4 in all.
The detector is GluonCV's own :class:`gluoncv.model_zoo.center_net.CenterNet`
(heads ``heatmap``/``wh``/``reg`` with a 64-channel 3x3 conv each, the
heatmap bias -2.19, the max-pool peak picking and the decoder, ``topk`` 40 on
VOC and 100 on COCO, ``set_nms``, ``reset_class``, ``flip_test``), so the
outputs and the post-processing are GluonCV's, and GluonCV's
``center_net_mobilenetv3_*`` files load into ``center_net_mobilenetv3_*``.
As GluonCV's, the network comes initialized (its scripts call
``initialize()`` again, which changes nothing).

Unlike GluonCV's base, an injected ``norm_layer`` (``SyncBatchNorm``) is
accepted: it goes into the backbone; the DUC blocks keep GluonCV's BatchNorm.

The export (:mod:`.export`) writes the network up to the heads' outputs: the
peak picking and decoding stay outside the exported graph.
"""
import warnings
from collections import OrderedDict

from mxnet import cpu
from mxnet.gluon import nn
from gluoncv.model_zoo.center_net.center_net import CenterNet as _GluonCVCenterNet
from gluoncv.nn.block import DUC

from ..asymmnet import CheckedNet
from .backbone import build_backbone, features_before_pool, sequential

__all__ = ['UP_FILTERS', 'DUCBase', 'CenterNet', 'center_net']

UP_FILTERS = {'large': (512, 256, 256), 'small': (512, 256, 128)}
TOPK = {'voc': 40, 'coco': 100}


class DUCBase(nn.HybridBlock):
    """The backbone's layers before pooling (``feature``), then DUC upsamplings x2 (``upsampling``)."""

    def __init__(self, base, up_filters, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.feature = sequential(features_before_pool(base))
            self.upsampling = nn.HybridSequential(prefix='upsampling_')
            for planes in up_filters:
                self.upsampling.add(DUC(planes, 2))

    def hybrid_forward(self, F, x):
        return self.upsampling(self.feature(x))


class CenterNet(CheckedNet, _GluonCVCenterNet):
    """GluonCV's CenterNet, with this package's per-mode graphs (fast CPU kernels in training and inference)."""


def center_net(backbone, dataset, pretrained_base=True, pretrained_ctx=cpu(), norm_layer=nn.BatchNorm,
               norm_kwargs=None, **kwargs):
    """``center_net_<backbone>_duc_<dataset>``: GluonCV's CenterNet over :class:`DUCBase`.

    Parameters
    ----------
    backbone : str
        ``asymmnet_large``, ``asymmnet_small``, ``mobilenetv3_large``, ``mobilenetv3_small``.
    dataset : str
        ``'voc'`` (20 classes, topk 40) or ``'coco'`` (80 classes, topk 100).
    pretrained_base : bool or str
        The backbone's ImageNet weights (:func:`~.backbone.build_backbone`; GluonCV's default True).
    pretrained_ctx : Context
        Where they are loaded.
    norm_layer, norm_kwargs : optional
        The backbone's normalization layer (GluonCV's scripts pass ``nn.BatchNorm``).
    **kwargs
        The backbone's options (``multiplier``, ``asymmrate``, ...), then
        ``prefix``/``params``.
    """
    from gluoncv.data import COCODetection, VOCDetection
    block = {k: kwargs.pop(k) for k in ('prefix', 'params') if k in kwargs}
    classes = {'voc': VOCDetection.CLASSES, 'coco': COCODetection.CLASSES}[dataset]
    base = build_backbone(backbone, pretrained_base, pretrained_ctx, norm_layer=norm_layer,
                          norm_kwargs=dict(norm_kwargs or {}), **kwargs)
    heads = OrderedDict([('heatmap', {'num_output': len(classes), 'bias': -2.19}),
                         ('wh', {'num_output': 2}), ('reg', {'num_output': 2})])
    net = CenterNet(DUCBase(base, UP_FILTERS[backbone.rsplit('_', 1)[-1]]), heads, classes, head_conv_channel=64,
                    scale=4.0, topk=TOPK[dataset], **block)
    with warnings.catch_warnings():
        # Already loaded backbone parameters stay as they are.
        warnings.simplefilter('ignore')
        net.initialize()
    return net
