"""The bundled demo dataset: scikit-learn's handwritten digits, packed as RecordIO.

``sklearn.datasets.load_digits`` ships its 1,797 8x8 images inside the
package, so the demo needs no download. They are upscaled to 32x32 RGB,
split once into a fixed, stratified held-out set (20 % of every class, seeded)
and packed with :func:`gluon_asymmnet.data.pack.pack_arrays`, the same record
format as ImageNet's.
"""
import json
import os

import cv2
import numpy as np
from filelock import FileLock

from ..files import file_sha256
from ..home import mxnet_home
from .errors import DataError
from .folders import holdout_split

__all__ = ['demo_dataset', 'digits_split', 'digit_images', 'DIGITS_IMAGE_SIZE']

DIGITS_IMAGE_SIZE = 32
_VAL_FRACTION = 0.2
_SPLIT_SEED = 0
# Bump when the packed content changes so that old copies are re-packed.
_VERSION = 1
_FILES = ('digits_train.rec', 'digits_train.idx', 'digits_val.rec', 'digits_val.idx')


def _default_root():
    return mxnet_home('datasets', 'digits')


def digits_split(labels, val_fraction=_VAL_FRACTION, seed=_SPLIT_SEED):
    """Fixed stratified split: per class, ``round(val_fraction * count)`` images go to val.

    :func:`gluon_asymmnet.data.folders.holdout_split` with the demo's fraction
    and seed; the split never changes. Returns sorted (train indices, val indices).
    """
    return holdout_split(labels, val_fraction, seed)


def digit_images():
    """All 1,797 digits as ``(images, labels)``: uint8 RGB (N, 32, 32, 3) and int64 labels 0-9."""
    from sklearn.datasets import load_digits
    digits = load_digits()
    # 0..16 ink levels -> 0..255, bicubic upscale, grey -> 3 equal channels.
    size = DIGITS_IMAGE_SIZE
    images = np.empty((len(digits.images), size, size, 3), dtype=np.uint8)
    for i, img in enumerate(digits.images):
        big = cv2.resize(img.astype(np.float32) * (255.0 / 16.0), (size, size),
                         interpolation=cv2.INTER_CUBIC)
        images[i] = np.clip(np.rint(big), 0, 255).astype(np.uint8)[:, :, None]
    return images, digits.target.astype(np.int64)


def _read_manifest(root):
    """The manifest if every file it lists is present and unchanged, else None."""
    try:
        with open(os.path.join(root, 'manifest.json')) as f:
            manifest = json.load(f)
        if manifest.get('version') != _VERSION:
            return None
        for name in _FILES:
            if file_sha256(os.path.join(root, name)) != manifest['sha256'][name]:
                return None
        return manifest
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _build(root):
    from .pack import pack_arrays
    images, labels = digit_images()
    train, val = digits_split(labels)
    classes = [str(c) for c in range(10)]
    for name, ids in (('digits_train', train), ('digits_val', val)):
        pack_arrays(images[ids], labels[ids], os.path.join(root, name), classes=classes,
                    source_ids=ids)
    manifest = dict(version=_VERSION, image_size=DIGITS_IMAGE_SIZE, classes=classes,
                    num_train=int(len(train)), num_val=int(len(val)),
                    train_ids=train.tolist(), val_ids=val.tolist(),
                    sha256={name: file_sha256(os.path.join(root, name)) for name in _FILES})
    tmp = os.path.join(root, 'manifest.json.tmp')
    with open(tmp, 'w') as f:
        json.dump(manifest, f)
    os.replace(tmp, os.path.join(root, 'manifest.json'))
    return manifest


def demo_dataset(root=None):
    """The handwritten-digits demo data as RecordIO files, packed on first use.

    Idempotent and safe to call from several processes at once: a lock file
    serialises them, and the files are re-packed only when they are missing
    or differ from the manifest's SHA-256 sums.

    Parameters
    ----------
    root : str, optional
        Where the files live; default ``$MXNET_HOME/datasets/digits`` or
        ``~/.mxnet/datasets/digits``.

    Returns
    -------
    dict
        ``rec_train``, ``rec_train_idx``, ``rec_val``, ``rec_val_idx`` (paths),
        ``classes`` (10 names), ``num_train`` (1,438), ``num_val`` (359),
        ``input_size`` (32, the size the demo trains at), ``root``, ``packed``
        (whether this call had to pack the files), and
        ``augment``: keyword arguments for :func:`get_data_loaders` that suit
        digits (no mirroring; crops of at least half the image).
    """
    root = os.path.abspath(root or _default_root())
    try:
        os.makedirs(root, exist_ok=True)
    except OSError as e:
        raise DataError('cannot create the demo data folder %s: %s' % (root, e.strerror or e)) from None
    with FileLock(os.path.join(root, '.lock')):
        manifest = _read_manifest(root)
        packed = manifest is None
        if packed:
            manifest = _build(root)
    path = lambda name: os.path.join(root, name)  # noqa: E731
    return dict(rec_train=path('digits_train.rec'), rec_train_idx=path('digits_train.idx'),
                rec_val=path('digits_val.rec'), rec_val_idx=path('digits_val.idx'),
                classes=list(manifest['classes']), num_train=manifest['num_train'],
                num_val=manifest['num_val'], input_size=DIGITS_IMAGE_SIZE, root=root, packed=packed,
                augment=dict(mirror=False, crop_area=(0.5, 1.0)))
