"""The downstream models under GluonCV's names, as data for the registry (:mod:`gluon_asymmnet.registry`).

Each name gets a builder whose signature lists exactly what the model takes
(GluonCV's keywords, then the backbone's options), so ``get_model`` refuses
anything else by name. The family modules (:mod:`gluon_asymmnet.downstream`)
import GluonCV, the model store and the registry, so each builder imports its
module by name only when called: importing the registry loads nothing of
them, and this module sits outside that package, below the registry.
"""
import importlib
import inspect
from collections import namedtuple
from types import MappingProxyType

from mxnet import cpu
from mxnet.gluon import nn

from .asymmnet import asymmnet_large, asymmnet_small, mobilenetv3_large, mobilenetv3_small
from .mobilenetv2 import mobilenetv2

__all__ = ['Entry', 'ENTRIES', 'BACKBONES', 'DETECTION_BACKBONES', 'POSE_BACKBONES', 'backbone_arguments']

# Backbone name (as in the downstream model names) -> (classification builder, store model name,
# fixed builder arguments, arguments it takes with their defaults).
_SHARED = dict(multiplier=1.0, corrected_first_block=False)
_ASYMM = dict(_SHARED, asymmrate=1, shuffle_groups=0)
BACKBONES = {
    'asymmnet_large': (asymmnet_large, 'asymmnet_large', {}, _ASYMM),
    'asymmnet_small': (asymmnet_small, 'asymmnet_small', {}, _ASYMM),
    'mobilenetv3_large': (mobilenetv3_large, 'mobilenetv3_large', {}, _SHARED),
    'mobilenetv3_small': (mobilenetv3_small, 'mobilenetv3_small', {}, _SHARED),
    'mobilenetv2_1.0': (mobilenetv2, 'mobilenetv2', {'multiplier': 1.0}, {}),
}


def backbone_arguments(backbone):
    """The options a backbone takes, with defaults (``multiplier``, ``asymmrate``...)."""
    return dict(BACKBONES[backbone][3])


Entry = namedtuple('Entry', 'name builder task about')

# GluonCV has MobilePose over MobileNetV2 1.0, and CenterNet/YOLOv3 over no MobileNetV2.
POSE_BACKBONES = ('asymmnet_large', 'asymmnet_small', 'mobilenetv3_large', 'mobilenetv3_small', 'mobilenetv2_1.0')
DETECTION_BACKBONES = ('asymmnet_large', 'asymmnet_small', 'mobilenetv3_large', 'mobilenetv3_small')
DATASETS = ('voc', 'coco')

# An empty norm_kwargs default the registry can read a type from (a default of None is refused there).
NO_KWARGS = MappingProxyType({})

# family -> (module, function, its own keywords with GluonCV's defaults, task, what it is)
_FAMILIES = {
    'mobile_pose': ('pose', 'mobile_pose', dict(num_joints=17, pretrained_base=False, pretrained_ctx=cpu()),
                    'pose', "GluonCV's MobilePose (backbone, 1x1 conv 256, DUC 512/256/128, 1x1 conv to joints)"),
    'center_net': ('center_net', 'center_net', dict(pretrained_base=True, pretrained_ctx=cpu()), 'detection',
                   "GluonCV's CenterNet (Zhou et al. 2019) over the DUC-upsampled backbone"),
    'yolo3': ('yolo3', 'yolo3', dict(pretrained_base=True, pretrained_ctx=cpu()), 'detection',
              "GluonCV's YOLOv3 (Redmon and Farhadi 2018) over the backbone's stride-8/16/32 stages"),
}


def _builder(family, name, backbone, *fixed):
    module, function, own, _, _ = _FAMILIES[family]
    keywords = dict(own, norm_layer=nn.BatchNorm, norm_kwargs=NO_KWARGS, **backbone_arguments(backbone))

    def build(**kwargs):
        make = getattr(importlib.import_module('gluon_asymmnet.downstream.' + module), function)
        return make(backbone, *fixed, **kwargs)
    build.__name__ = build.__qualname__ = name.replace('.', '_')
    build.__doc__ = '``%s``: see :func:`gluon_asymmnet.downstream.%s.%s`.' % (name, module, function)
    build.__signature__ = inspect.Signature([inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY, default=v)
                                             for k, v in keywords.items()])
    return build


def _entries():
    out = []
    for b in POSE_BACKBONES:
        name = 'mobile_pose_' + b
        out.append(Entry(name, _builder('mobile_pose', name, b), 'pose', _FAMILIES['mobile_pose'][4]))
    for b in DETECTION_BACKBONES:
        for d in DATASETS:
            name = 'center_net_%s_duc_%s' % (b, d)
            out.append(Entry(name, _builder('center_net', name, b, d), 'detection', _FAMILIES['center_net'][4]))
    for b in DETECTION_BACKBONES:
        for d in DATASETS:
            name = 'yolo3_%s_%s' % (b, d)
            out.append(Entry(name, _builder('yolo3', name, b, d), 'detection', _FAMILIES['yolo3'][4]))
    assert all(b in BACKBONES for b in POSE_BACKBONES + DETECTION_BACKBONES)
    return tuple(out)


ENTRIES = _entries()
