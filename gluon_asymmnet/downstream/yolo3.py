"""YOLOv3 (Redmon and Farhadi, 2018) over a mobile backbone, as GluonCV's ``yolo3_mobilenet1.0_{voc,coco}``.

GluonCV's own :class:`gluoncv.model_zoo.yolo.yolo3.YOLOV3` (detection blocks,
transitions, outputs, target generator, loss, ``set_nms``, ``reset_class``)
over the backbone's three stages that end at strides 8, 16 and 32
(:func:`~.backbone.split_at_strides`: the last ends at the 1x1 conv before
pooling), with the anchors, strides (8, 16, 32) and filters (512, 256, 128)
of GluonCV's MobileNet variants. ``norm_layer``/``norm_kwargs``
(``train_yolo3.py --syncbn``: ``SyncBatchNorm``) go into the backbone and the
YOLO blocks. As GluonCV's, the network comes uninitialized except for the
backbone weights ``pretrained_base`` loads.

The export (:mod:`.export`) writes the network up to the three outputs'
raw predictions: box decoding and NMS stay outside the exported graph.
"""
from mxnet import cpu
from mxnet.gluon import nn
from gluoncv.model_zoo.yolo.yolo3 import YOLOV3 as _GluonCVYOLOV3

from ..asymmnet import CheckedNet
from .backbone import build_backbone, split_at_strides

__all__ = ['ANCHORS', 'STRIDES', 'FILTERS', 'YOLOV3', 'yolo3']

ANCHORS = [[10, 13, 16, 30, 33, 23], [30, 61, 62, 45, 59, 119], [116, 90, 156, 198, 373, 326]]
STRIDES = [8, 16, 32]
FILTERS = [512, 256, 128]


class YOLOV3(CheckedNet, _GluonCVYOLOV3):
    """GluonCV's YOLOv3, with this package's per-mode graphs (fast CPU kernels in training and inference)."""

    @property
    def num_class(self):
        """Number of foreground classes (GluonCV 0.10.5's property reads an attribute it never sets)."""
        return len(self.classes)


def yolo3(backbone, dataset, pretrained_base=True, pretrained_ctx=cpu(), norm_layer=nn.BatchNorm,
          norm_kwargs=None, **kwargs):
    """``yolo3_<backbone>_<dataset>``: GluonCV's YOLOv3 over the backbone's stride-8/16/32 stages.

    Parameters
    ----------
    backbone : str
        ``asymmnet_large``, ``asymmnet_small``, ``mobilenetv3_large``, ``mobilenetv3_small``.
    dataset : str
        ``'voc'`` (20 classes) or ``'coco'`` (80).
    pretrained_base : bool or str
        The backbone's ImageNet weights (:func:`~.backbone.build_backbone`; GluonCV's default True).
    pretrained_ctx : Context
        Where they are loaded.
    norm_layer, norm_kwargs : optional
        The normalization layer of the backbone and the YOLO blocks.
    **kwargs
        The backbone's options (``multiplier``, ``asymmrate``, ...), then
        ``prefix``/``params``.
    """
    from gluoncv.data import COCODetection, VOCDetection
    block = {k: kwargs.pop(k) for k in ('prefix', 'params') if k in kwargs}
    classes = {'voc': VOCDetection.CLASSES, 'coco': COCODetection.CLASSES}[dataset]
    norm_kwargs = dict(norm_kwargs or {})
    base = build_backbone(backbone, pretrained_base, pretrained_ctx, norm_layer=norm_layer, norm_kwargs=norm_kwargs,
                          **kwargs)
    return YOLOV3(split_at_strides(base, STRIDES), FILTERS, ANCHORS, STRIDES, classes, norm_layer=norm_layer,
                  norm_kwargs=norm_kwargs or None, **block)
