"""Image decoding and the GluonCV ImageNet preprocessing, on numpy arrays with OpenCV.

Train: random resized crop, horizontal flip, colour jitter, PCA lighting.
Val: resize the short side to ``ceil(size / crop_ratio)``, centre crop.
Every random choice comes from the ``numpy.random.Generator`` passed in, so a
sample's augmentation is a pure function of how that generator was seeded.
Geometry and interpolation follow ``mxnet.image`` / GluonCV (bilinear OpenCV
resizes, the same rounding), so the val path reproduces GluonCV's
``Resize(keep_ratio=True)`` + ``CenterCrop`` pixel for pixel. The default
crop ratio and normalisation are ImageNet's
(:data:`gluon_asymmnet.preprocessing.IMAGENET`).
"""
import math

import cv2
import numpy as np

from ..preprocessing import IMAGENET
from .pixels import pixel_problem

__all__ = ['MEAN_RGB', 'STD_RGB', 'decode', 'random_resized_crop', 'colour_matrix',
           'train_image', 'val_image', 'normalize_into']

MEAN_RGB, STD_RGB = IMAGENET.mean, IMAGENET.std

# ImageNet RGB principal components (AlexNet's PCA lighting, as GluonCV uses them).
_EIGVAL = np.array([55.46, 4.794, 1.148])
_EIGVEC = np.array([[-0.5675, 0.7192, 0.4009],
                    [-0.5808, -0.0045, -0.8140],
                    [-0.5836, -0.6948, 0.4203]])
_GREY = np.array([0.299, 0.587, 0.114])


def decode(payload):
    """Decode encoded image bytes to an RGB uint8 HWC array; None when they are not an image.

    None too, without decoding, for an image above the pixel limit (:mod:`.pixels`).
    """
    if not payload or pixel_problem(payload):
        return None
    try:
        img = cv2.imdecode(np.frombuffer(payload, dtype=np.uint8), cv2.IMREAD_COLOR)
    except cv2.error:
        return None
    if img is None or img.ndim != 3 or img.shape[0] == 0 or img.shape[1] == 0:
        return None
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def random_resized_crop(img, size, rng, area=(0.08, 1.0), ratio=(3. / 4., 4. / 3.)):
    """Crop a random region (area fraction in ``area``, log-uniform aspect ratio in ``ratio``)
    and resize it to ``size`` x ``size``; after 10 misses, the centred square.
    """
    h, w = img.shape[:2]
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = rng.uniform(area[0], area[1]) * h * w
        aspect = math.exp(rng.uniform(*log_ratio))
        cw = int(round(math.sqrt(target * aspect)))
        ch = int(round(math.sqrt(target / aspect)))
        if 0 < cw <= w and 0 < ch <= h:
            x0 = int(rng.integers(0, w - cw + 1))
            y0 = int(rng.integers(0, h - ch + 1))
            break
    else:
        cw = ch = min(h, w)
        x0, y0 = (w - cw) // 2, (h - ch) // 2
    crop = img[y0:y0 + ch, x0:x0 + cw]
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_LINEAR)


def colour_matrix(mean_rgb, rng, jitter=0.4, lighting=0.1):
    """The per-pixel affine map ``x -> A x + b`` (3 x 4) of colour jitter and PCA lighting.

    Brightness, contrast and saturation, each with factor ``1 + U(-jitter, jitter)``,
    are applied in a random order; contrast blends with the grey mean of the image
    as it is at that point (``mean_rgb`` is the mean colour of the input). Lighting
    adds ``eigvec @ (N(0, lighting) * eigval)``. All of them are affine in the pixel,
    so they compose into one matrix that OpenCV applies in a single pass.
    """
    A, b = np.eye(3), np.zeros(3)
    if jitter > 0:
        for op in rng.permutation(3):
            alpha = 1.0 + rng.uniform(-jitter, jitter)
            if op == 0:    # brightness
                A, b = alpha * A, alpha * b
            elif op == 1:  # contrast
                grey = _GREY @ (A @ mean_rgb + b)
                A, b = alpha * A, alpha * b + (1.0 - alpha) * grey
            else:          # saturation
                S = alpha * np.eye(3) + (1.0 - alpha) * np.outer(np.ones(3), _GREY)
                A, b = S @ A, S @ b
    if lighting > 0:
        b = b + _EIGVEC @ (rng.normal(0, lighting, size=3) * _EIGVAL)
    return np.hstack([A, b[:, None]])


def train_image(img, size, rng, area=(0.08, 1.0), ratio=(3. / 4., 4. / 3.), mirror=True,
                jitter=0.4, lighting=0.1):
    """GluonCV's ImageNet train augmentation of one RGB uint8 image; returns uint8 ``size``^2 x 3.

    Colours saturate at 0 and 255 as in MXNet's uint8 image operators.
    """
    out = random_resized_crop(img, size, rng, area, ratio)
    if mirror and rng.random() < 0.5:
        out = cv2.flip(out, 1)
    if jitter > 0 or lighting > 0:
        mean = np.array(cv2.mean(out)[:3])
        out = cv2.transform(out, colour_matrix(mean, rng, jitter, lighting))
    return out


def val_image(img, size, crop_ratio=IMAGENET.crop_ratio):
    """Resize the short side to ``ceil(size / crop_ratio)`` (long side scaled and floored,
    as ``mx.nd.image.resize`` does), then crop ``size`` x ``size`` from the centre."""
    resize = int(math.ceil(size / crop_ratio))
    h, w = img.shape[:2]
    if h > w:
        nw, nh = resize, int(h * resize / w)
    else:
        nw, nh = int(w * resize / h), resize
    if (nh, nw) != (h, w):
        img = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
    x0, y0 = int((nw - size) / 2), int((nh - size) / 2)
    return img[y0:y0 + size, x0:x0 + size]


def normalize_into(out, img, mean, inv_std):
    """Write ``(img - mean) * inv_std`` of an HWC image into the CHW array ``out``."""
    np.subtract(img.transpose(2, 0, 1), mean, out=out, casting='unsafe')
    out *= inv_std
