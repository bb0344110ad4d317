"""GluonCV's pose and detection models over AsymmNet, MobileNetV3 and MobileNetV2, under GluonCV's names.

The paper presents the asymmetrical bottleneck as a drop-in block for mobile
networks and reports pose (COCO keypoints) and detection (Pascal VOC) results;
the authors published no downstream code. GluonCV ships these models over
MobileNetV3 only, and its constructors accept no other backbone. Here they are
built from GluonCV's own classes (its ``DUC`` block, ``CenterNet`` and
``YOLOV3``, so the heads, losses, targets and post-processing are GluonCV's)
over this package's backbones, and are in :func:`gluon_asymmnet.get_model`:

- ``mobile_pose_<backbone>`` (:mod:`.pose`): backbones ``asymmnet_large``,
  ``asymmnet_small``, ``mobilenetv3_large``, ``mobilenetv3_small``,
  ``mobilenetv2_1.0``; keywords ``num_joints``, ``pretrained_base``,
  ``pretrained_ctx`` (and ``pretrained``, ``ctx`` of ``get_model``);
- ``center_net_<backbone>_duc_{voc,coco}`` (:mod:`.center_net`);
- ``yolo3_<backbone>_{voc,coco}`` (:mod:`.yolo3`);

for the four AsymmNet/MobileNetV3 backbones, each with ``norm_layer``,
``norm_kwargs`` (``SyncBatchNorm``) and the backbone's options: ``multiplier``,
``corrected_first_block``, and for AsymmNet ``asymmrate`` and
``shuffle_groups``. ``get_model_list('pose')`` and
``get_model_list('detection')`` list them. The ``mobilenetv3_*`` models are
GluonCV's: its parameter files load (:func:`gluon_asymmnet.load_checkpoint`)
and give its outputs.

Backbone weights (:mod:`.backbone`): ``pretrained_base=True`` loads the
backbone's ImageNet weights from the model store (the released AsymmNet-L
1.0, GluonCV's MobileNetV3 and MobileNetV2 1.0) and refuses, naming the ways
to give a file, where nothing is published; ``pretrained_base=FILE`` loads
that file without its classifier. :func:`set_backbone_params` (or the
:func:`backbone_params` context manager) makes ``pretrained_base=True`` load
a given file, process-wide: what ``python -m gluon_asymmnet.with_gluoncv
--backbone-params FILE`` does for GluonCV's scripts, which always pass
``pretrained_base=True``.

Export (:mod:`.export`): :func:`export_downstream` writes symbol JSON and
ONNX with the backbone in its deployment form (:mod:`gluon_asymmnet.deploy`),
verified against Gluon; detectors up to their raw head outputs.
"""
from .backbone import BackboneError, backbone_params, set_backbone_params

__all__ = ['BackboneError', 'backbone_params', 'set_backbone_params', 'export_downstream']


def __getattr__(name):
    if name == 'export_downstream':
        from .export import export_downstream
        return export_downstream
    raise AttributeError('module %r has no attribute %r' % (__name__, name))
