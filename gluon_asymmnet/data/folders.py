"""Your own images as training data: a folder with ``train/`` and ``val/``, or one folder split by seed.

``image_folder_sources(DIR)`` reads, in this order of precedence:

- ``DIR/train/<class>/*`` and ``DIR/val/<class>/*``, both holding class
  folders: the given split (ImageNet's layout; validation labels follow the
  training classes);
- ``DIR/train/<class>/*`` alone, or ``DIR/<class>/*``: one folder, split into
  training and held-out images per class (:func:`holdout_split`), the same
  split for the same ``val_fraction`` and ``seed`` on every machine.

Labels are the positions of the sorted class folder names.
"""
import os

import numpy as np

from .errors import DataError
from .sources import FolderSource, class_folder_names

__all__ = ['holdout_split', 'folder_layout', 'folder_class_names', 'SubsetSource', 'image_folder_sources']


def holdout_split(labels, val_fraction, seed):
    """Fixed stratified split: per class, ``round(val_fraction * count)`` images go to the held-out set.

    ``numpy.random.RandomState`` streams are frozen across numpy releases, so
    the split never changes. Returns sorted (train positions, held-out positions).
    """
    labels = np.asarray(labels)
    rs = np.random.RandomState(seed)
    val = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        val.extend(rs.permutation(members)[:int(round(val_fraction * len(members)))])
    val = np.sort(np.asarray(val, dtype=np.int64))
    train = np.setdiff1d(np.arange(len(labels)), val)
    return train, val


def _holds_class_folders(path):
    try:
        return any(not d.startswith('.') and os.path.isdir(os.path.join(path, d)) for d in os.listdir(path))
    except OSError:
        return False


def folder_layout(root):
    """``('split', train_root, val_root)`` or ``('single', class_root, None)`` for ``root`` (module notes).

    ``train/`` and ``val/`` make a split only when both hold class folders
    (a class may be named ``train``); ``train/`` alone, holding class folders,
    is the single folder. A ``val/`` beside such a ``train/`` that holds no
    class folder is refused.
    """
    if not os.path.isdir(root):
        raise DataError('image folder %s does not exist' % root if not os.path.exists(root)
                        else 'image folder %s is not a directory' % root)
    train, val = os.path.join(root, 'train'), os.path.join(root, 'val')
    if os.path.isdir(train) and _holds_class_folders(train):
        if not os.path.exists(val):
            return 'single', train, None
        if os.path.isdir(val) and _holds_class_folders(val):
            return 'split', train, val
        raise DataError('%s holds class folders but %s does not: give val/ the same class folders as train/ '
                        '(or remove it to hold out part of train/)' % (train, val))
    return 'single', root, None


def folder_class_names(root):
    """The sorted class folder names of ``root``'s training images (without listing the images)."""
    return class_folder_names(folder_layout(root)[1])


class SubsetSource(object):
    """Some positions of an image source, as a source of their own (keys stay the parent's)."""

    def __init__(self, source, positions):
        self.parent = source
        self.positions = np.asarray(positions, dtype=np.int64)
        self.root = getattr(source, 'root', None)
        self.class_names = getattr(source, 'class_names', None)

    def __len__(self):
        return len(self.positions)

    @property
    def keys(self):
        return self.parent.keys[self.positions]

    def read(self, pos):
        return self.parent.read(int(self.positions[pos]))

    def describe(self, pos):
        return self.parent.describe(int(self.positions[pos]))


def image_folder_sources(root, val_fraction=0.2, seed=0):
    """Training and validation sources of an image folder (module notes).

    Parameters
    ----------
    root : str
    val_fraction : float
        Held-out fraction of each class when the folder is not split already.
    seed : int
        Seed of that split.

    Returns
    -------
    (source, source, dict)
        Training and validation sources (both with ``class_names``) and a
        description: ``layout`` (``'split'`` or ``'single'``), ``root``,
        ``num_train``, ``num_val``.

    Raises
    ------
    DataError
        A missing or empty folder, or a split that leaves a class without
        training images or the held-out set empty.
    """
    layout, train_root, val_root = folder_layout(root)
    if layout == 'split':
        train = FolderSource(train_root, min_classes=2)
        val = FolderSource(val_root, train.class_names)
        val.class_names = train.class_names
    else:
        if not 0 < val_fraction < 1:
            raise DataError('%s is one folder of classes: the held-out fraction must be in (0, 1), got %r'
                            % (train_root, val_fraction))
        whole = FolderSource(train_root, min_classes=2)
        train_pos, val_pos = holdout_split(whole.labels, val_fraction, seed)
        counts = np.bincount(whole.labels[train_pos], minlength=len(whole.class_names))
        if not counts.all():
            empty = whole.class_names[int(np.flatnonzero(counts == 0)[0])]
            raise DataError('%s: holding out %g of class %s leaves it no training image; add images or lower '
                            'the held-out fraction' % (train_root, val_fraction, empty))
        if not len(val_pos):
            raise DataError('%s: a held-out fraction of %g holds out no image (%d images); raise it'
                            % (train_root, val_fraction, len(whole)))
        train, val = SubsetSource(whole, train_pos), SubsetSource(whole, val_pos)
    return train, val, dict(layout=layout, root=train_root if layout == 'single' else root,
                            num_train=len(train), num_val=len(val))
