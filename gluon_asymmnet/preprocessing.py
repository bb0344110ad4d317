"""The input a model expects: image size, centre-crop ratio, RGB mean and std, resize interpolation.

Each model of :mod:`gluon_asymmnet.model_zoo` carries one
:class:`PreprocessConfig` (timm's ``pretrained_cfg`` manner); a store entry
of ``pretrained.json`` may refine it, a training run records the one it used
beside every checkpoint (:mod:`gluon_asymmnet.run_meta`), and the data
pipeline, evaluation and the export's uint8 input read it from there.
:data:`IMAGENET` is the one copy of GluonCV's ImageNet values, which the
released AsymmNet and GluonCV's MobileNetV3 weights were trained with.

This module imports neither MXNet nor OpenCV: the data pipeline uses it too.
"""
import dataclasses
import math
from dataclasses import dataclass
from typing import Tuple

__all__ = ['PreprocessConfig', 'IMAGENET', 'INTERPOLATIONS', 'MIN_INPUT_SIZE']

# Resize interpolations the data pipeline implements (OpenCV's, as mxnet.image and GluonCV resize).
INTERPOLATIONS = ('bilinear',)
# The smallest input side trained, evaluated or exported: the one limit of every command line.
MIN_INPUT_SIZE = 8


@dataclass(frozen=True)
class PreprocessConfig:
    """How images become network input; checked when built.

    Attributes
    ----------
    input_size : int
        Side of the square network input.
    crop_ratio : float
        Validation: resize the short side to ``ceil(input_size / crop_ratio)``,
        then crop ``input_size`` from the centre (timm's ``crop_pct``).
    mean, std : tuple of 3 float
        RGB normalisation on the 0-255 scale: ``(x - mean) / std``.
    interpolation : str
        Resize interpolation (one of :data:`INTERPOLATIONS`).

    Raises
    ------
    ValueError
        A value out of range, naming the field.
    """
    input_size: int
    crop_ratio: float
    mean: Tuple[float, float, float]
    std: Tuple[float, float, float]
    interpolation: str = 'bilinear'

    def __post_init__(self):
        if int(self.input_size) != self.input_size or self.input_size < MIN_INPUT_SIZE:
            raise ValueError('input_size must be an integer >= %d, got %r' % (MIN_INPUT_SIZE, self.input_size))
        if not 0 < self.crop_ratio <= 1:
            raise ValueError('crop_ratio must be in (0, 1], got %r' % (self.crop_ratio,))
        for name in ('mean', 'std'):
            value = tuple(float(v) for v in getattr(self, name))
            if len(value) != 3 or not all(math.isfinite(v) for v in value):
                raise ValueError('%s must be 3 finite numbers (R, G, B), got %r' % (name, getattr(self, name)))
            object.__setattr__(self, name, value)
        if min(self.std) <= 0:
            raise ValueError('std must be positive, got %r' % (self.std,))
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError('interpolation must be one of %s (what the data pipeline implements), got %r'
                             % (', '.join(INTERPOLATIONS), self.interpolation))
        object.__setattr__(self, 'input_size', int(self.input_size))
        object.__setattr__(self, 'crop_ratio', float(self.crop_ratio))

    def replace(self, **changes):
        """A checked copy with ``changes`` (field -> value; None leaves a field as it is)."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise ValueError('not preprocessing fields: %s (fields: %s)'
                             % (', '.join(unknown), ', '.join(f.name for f in dataclasses.fields(self))))
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self):
        """The fields as a plain dict (JSON-ready)."""
        return dataclasses.asdict(self)


# GluonCV's ImageNet preprocessing (docs/design.md section 5): 224 px, resize to 256 and crop the centre.
IMAGENET = PreprocessConfig(input_size=224, crop_ratio=0.875, mean=(123.68, 116.779, 103.939),
                            std=(58.393, 57.12, 57.375), interpolation='bilinear')
