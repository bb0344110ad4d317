"""MobilePose: single-person pose heatmaps from a mobile backbone and three DUC upsamplings.

GluonCV's ``mobile_pose_<backbone>`` (``gluoncv/model_zoo/simple_pose/mobile_pose.py``)
over this package's backbones: the backbone's layers before global pooling
(:func:`~.backbone.features_before_pool`), a 1x1 convolution to 256
channels, three DUC upsamplings (3x3 conv to 512, 256, 128 channels,
BatchNorm, ReLU, pixel shuffle x2: GluonCV's own ``DUC`` block) and a 1x1
convolution to the joints: heatmaps at 1/4 of the input size, as GluonCV's
``SimplePoseDefaultTrainTransform`` targets them. The children and their
names are GluonCV's (``features.0.*``, ``upsampling.*``), so GluonCV's
``mobile_pose_mobilenetv3_*`` files load into ``mobile_pose_mobilenetv3_*``
(:func:`gluon_asymmnet.load_checkpoint`), and ``train_simple_pose.py``'s
``net.upsampling.initialize()`` after ``pretrained_base=True`` works.
"""
from mxnet import cpu, initializer
from mxnet.gluon import nn

from ..asymmnet import CheckedNet
from .backbone import build_backbone, features_before_pool, sequential

__all__ = ['MobilePose', 'mobile_pose']

UP_FILTERS = (512, 256, 128)


class MobilePose(CheckedNet):
    """Backbone features -> 1x1 conv 256 -> DUC 512, 256, 128 (x2 each) -> 1x1 conv to ``num_joints`` heatmaps.

    Parameters
    ----------
    base : BottleneckNet
        The backbone network (its layers before pooling are kept, shared).
    num_joints : int
        Heatmap channels (17: COCO keypoints).
    """

    def __init__(self, base, num_joints=17, **kwargs):
        super().__init__(**kwargs)
        from gluoncv.nn.block import DUC
        if int(num_joints) != num_joints or num_joints < 1:
            raise ValueError('num_joints must be a positive integer, got %r' % (num_joints,))
        self.num_joints = int(num_joints)
        with self.name_scope():
            self.features = nn.HybridSequential()
            self.features.add(sequential(features_before_pool(base)))
            self.upsampling = nn.HybridSequential()
            self.upsampling.add(nn.Conv2D(256, 1, 1, 0, use_bias=False))
            for planes in UP_FILTERS:
                self.upsampling.add(DUC(planes, 2))
            self.upsampling.add(nn.Conv2D(self.num_joints, 1, use_bias=False,
                                          weight_initializer=initializer.Normal(0.001)))

    def hybrid_forward(self, F, x):
        return self.upsampling(self.features(x))


def mobile_pose(backbone, num_joints=17, pretrained_base=False, pretrained_ctx=cpu(), norm_layer=nn.BatchNorm,
                norm_kwargs=None, **kwargs):
    """``mobile_pose_<backbone>``: :class:`MobilePose` with GluonCV's keywords.

    ``pretrained_base`` loads the backbone's ImageNet weights
    (:func:`~.backbone.build_backbone`) onto ``pretrained_ctx``; the other
    keyword arguments are the backbone's options (``multiplier``,
    ``asymmrate``, ``shuffle_groups``, ``corrected_first_block``), then
    ``prefix``/``params``.
    """
    block = {k: kwargs.pop(k) for k in ('prefix', 'params') if k in kwargs}
    base = build_backbone(backbone, pretrained_base, pretrained_ctx, norm_layer=norm_layer,
                          norm_kwargs=dict(norm_kwargs or {}), **kwargs)
    return MobilePose(base, num_joints, **block)
