"""What is in a picture: the top-k classes of images, named, with their probabilities.

:func:`predict` is the Python API; ``eval.py --predict`` runs it on files,
folders and globs (:mod:`gluon_asymmnet.evaluation.predict`).

- Reading (:func:`read_image`): OpenCV's decoder, the one the data pipeline
  uses, so an image has the same pixels here as in ``eval.py``: EXIF
  orientation applied, grayscale and CMYK made RGB, 16-bit scaled to 8, an
  alpha channel dropped (as GluonCV, timm and torchvision do). Pillow reads
  what OpenCV cannot (a GIF's first frame).
- Preprocessing (:func:`input_batch`): the evaluation's, from the model's
  :class:`~gluon_asymmnet.preprocessing.PreprocessConfig`: resize the short
  side to ``ceil(input_size / crop_ratio)``, crop the centre, ``(x - mean) /
  std`` (:func:`gluon_asymmnet.data.transforms.val_image`).
- Class names: given ones, else ImageNet's (GluonCV's list) for a network of
  1000 outputs, else the indices. ImageNet synset ids (``n01440764``) among
  given names read as their class names (:func:`readable_class_names`).
"""
import functools
import io
import os
import re
from collections import namedtuple

import numpy as np

from .data.errors import DataError
from .data.pixels import check_pixels
from .data.transforms import decode, normalize_into, val_image
from .preprocessing import IMAGENET

__all__ = ['ImageError', 'Prediction', 'read_image', 'input_batch', 'imagenet_class_names',
           'readable_class_names', 'predict']

_SYNSET = re.compile(r'^n\d{8}$')


class ImageError(DataError):
    """An image that cannot be read; the message names the file and why."""


class Prediction(namedtuple('Prediction', 'image indices names probabilities logits')):
    """The top-k classes of one image, most probable first.

    Attributes
    ----------
    image : str or int
        The path read, or the image's position in the input.
    indices : list of int
        Class indices (network outputs).
    names : list of str
        Their names.
    probabilities : list of float
        Their softmax probabilities.
    logits : numpy.ndarray
        Every output of the network for this image (float32).
    """


def _pillow_decode(payload):
    """RGB uint8 of what OpenCV does not decode, through Pillow (EXIF orientation applied); None if it cannot."""
    from PIL import Image, ImageOps
    try:
        with Image.open(io.BytesIO(payload)) as img:
            img.seek(0)
            img = ImageOps.exif_transpose(img)
            if img.mode in ('I', 'I;16', 'I;16B', 'I;16L', 'F'):
                grey = np.asarray(img, dtype=np.float64)
                grey = grey / 257.0 if grey.max() > 255 else grey
                return np.repeat(np.clip(grey + 0.5, 0, 255).astype(np.uint8)[:, :, None], 3, axis=2)
            return np.ascontiguousarray(np.asarray(img.convert('RGB')))
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError):
        return None


def read_image(path):
    """The image at ``path`` as RGB uint8 HxWx3, read as the data pipeline reads it (module notes).

    Raises
    ------
    ImageError
        The file cannot be opened, is empty, declares more pixels than
        :func:`gluon_asymmnet.data.pixels.max_image_pixels` (never decoded)
        or is not an image OpenCV or Pillow decodes, naming the file.
    """
    try:
        with open(path, 'rb') as f:
            payload = f.read()
    except OSError as err:
        raise ImageError('%s cannot be read: %s' % (path, err.strerror or err)) from None
    if not payload:
        raise ImageError('%s is empty (0 bytes)' % path)
    try:
        check_pixels(payload, path)   # a decompression bomb is never decoded
    except DataError as err:
        raise ImageError(str(err)) from None
    img = decode(payload)
    if img is None:
        img = _pillow_decode(payload)
    if img is None or img.ndim != 3 or not img.size:
        raise ImageError('%s is not an image OpenCV or Pillow can decode' % path)
    return img


def _rgb(image):
    """An image argument as RGB uint8 HxWx3 (a path is read; grayscale repeated; alpha dropped; 16-bit scaled)."""
    if isinstance(image, (str, os.PathLike)):
        return read_image(os.fspath(image))
    if not isinstance(image, np.ndarray):
        if hasattr(image, 'asnumpy'):      # mxnet NDArray
            image = image.asnumpy()
        elif hasattr(image, 'convert'):    # PIL image
            image = np.asarray(image.convert('RGB'))
        else:
            raise TypeError('an image is a path, an HxWx3 RGB array or a PIL image, got %s' % type(image).__name__)
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4) or not image.shape[0] or not image.shape[1]:
        raise ValueError('an image array is HxW or HxWxC with C in 1, 3, 4 (RGB order), got shape %s'
                         % (image.shape,))
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise ValueError('an image array holds uint8 (or uint16) pixels, got %s' % image.dtype)
    image = image[:, :, :3] if image.shape[2] > 1 else np.repeat(image, 3, axis=2)
    return np.ascontiguousarray(image)


def input_batch(images, preprocess=IMAGENET):
    """Float32 NCHW network input of ``images``, preprocessed as the evaluation does (module notes).

    Parameters
    ----------
    images : sequence
        Paths, RGB arrays (HxWx3 uint8; HxW, uint16 and an alpha channel are
        accepted) or PIL images.
    preprocess : PreprocessConfig
    """
    size = preprocess.input_size
    # The data pipeline's constants, in its dtype: the same float32 arithmetic gives the same input bits.
    mean = np.asarray(preprocess.mean, dtype=np.float32).reshape(3, 1, 1)
    inv_std = (1.0 / np.asarray(preprocess.std, dtype=np.float32)).reshape(3, 1, 1)
    out = np.empty((len(images), 3, size, size), dtype=np.float32)
    for k, image in enumerate(images):
        normalize_into(out[k], val_image(_rgb(image), size, preprocess.crop_ratio), mean, inv_std)
    return out


@functools.lru_cache(maxsize=None)
def _imagenet():
    from gluoncv.data.imagenet.classification import ImageNet1kAttr
    attr = ImageNet1kAttr()
    return tuple(attr.classes), dict(zip(attr.synset, attr.classes))


def imagenet_class_names():
    """ImageNet-1k's 1000 class names by index (GluonCV's list: ``tench``, ``goldfish``, ...)."""
    return list(_imagenet()[0])


def readable_class_names(names):
    """``names`` with each ImageNet synset id (``n01440764``) replaced by its class name (``tench``)."""
    if names is None or not any(_SYNSET.match(str(n)) for n in names):
        return None if names is None else list(names)
    by_synset = _imagenet()[1]
    return [by_synset.get(n, n) for n in names]


def _forward(net, batch):
    """Logits of one float32 NCHW batch: a Gluon block on its parameters' context, else any callable on NumPy."""
    import mxnet as mx
    if not isinstance(net, mx.gluon.Block):
        return np.asarray(net(batch), dtype=np.float32)
    params = list(net.collect_params().values())
    ctx = params[0].list_ctx()[0] if params else mx.cpu()
    out = net(mx.nd.array(batch, ctx=ctx))
    if isinstance(out, (list, tuple)):
        out = out[0]
    return out.asnumpy()


def _softmax(logits):
    z = logits.astype(np.float64)
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def predict(net, images, topk=5, class_names=None, preprocess=None, batch_size=32):
    """The ``topk`` most probable classes of each image, named.

    Parameters
    ----------
    net : HybridBlock or callable
        A network (run on its parameters' context), or any callable from a
        float32 NCHW NumPy batch to logits, e.g. an inference backend's
        :class:`~gluon_asymmnet.inference.Predictor`.
    images : path, array, PIL image, or a sequence of them
        Paths (:func:`read_image`), RGB arrays (HxWx3 uint8; an NxHxWx3 array
        is N images) or PIL images.
    topk : int
        Classes per image (at most the network's outputs).
    class_names : sequence of str, optional
        Name of each output by index; ImageNet synset ids read as names.
        Default: ImageNet's names for a network of 1000 outputs, else the
        indices. Outputs beyond the list are named by index.
    preprocess : PreprocessConfig, optional
        Default: ``net.preprocess_config`` (what :func:`get_model` sets), else
        ImageNet's.
    batch_size : int
        Images per forward pass.

    Returns
    -------
    Prediction or list of Prediction
        One per image (one for a single image), in the given order.

    Raises
    ------
    ImageError
        A path that cannot be read.
    ValueError
        ``topk`` below 1, more class names than outputs, an image array of
        another shape or type.
    """
    if hasattr(images, 'asnumpy'):
        images = images.asnumpy()
    single = isinstance(images, (str, os.PathLike)) or hasattr(images, 'convert') or (
        isinstance(images, np.ndarray) and images.ndim < 4)
    items = [images] if single else list(images)
    if int(topk) != topk or topk < 1:
        raise ValueError('topk must be a positive integer, got %r' % (topk,))
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError('batch_size must be a positive integer, got %r' % (batch_size,))
    preprocess = preprocess or getattr(net, 'preprocess_config', None) or IMAGENET
    logits = [_forward(net, input_batch(items[start:start + batch_size], preprocess))
              for start in range(0, len(items), batch_size)]
    if not logits:
        return []
    logits = np.concatenate(logits)
    outputs = logits.shape[1]
    names = readable_class_names(class_names)
    if names is None:
        names = imagenet_class_names() if outputs == 1000 else []
    if len(names) > outputs:
        raise ValueError('%d class names for a network of %d outputs' % (len(names), outputs))
    names = list(names) + [str(i) for i in range(len(names), outputs)]
    probs = _softmax(logits)
    k = min(int(topk), outputs)
    order = np.argsort(-probs, axis=1, kind='stable')[:, :k]
    found = [Prediction(os.fspath(image) if isinstance(image, (str, os.PathLike)) else pos, [int(i) for i in row],
                        [names[i] for i in row], [float(p) for p in probs[pos, row]], logits[pos])
             for pos, (image, row) in enumerate(zip(items, order))]
    return found[0] if single else found
