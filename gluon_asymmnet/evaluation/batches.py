"""Evaluation data: validation batches with GluonCV's centre-crop preprocessing, and calibration images."""
import os

import numpy as np

from ..data import demo_dataset, folder_batches, get_data_loaders
from ..preprocessing import IMAGENET
from .errors import EvalError

__all__ = ['eval_batches', 'calibration_images']


def _read_class_names(path):
    try:
        with open(path) as f:
            names = [line.strip() for line in f if line.strip()]
    except OSError as err:
        raise EvalError('--class-names %s cannot be read: %s' % (path, err.strerror or err))
    if not names:
        raise EvalError('--class-names %s lists no class' % path)
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise EvalError('--class-names %s lists %s more than once' % (path, dupes[0]))
    return names


def eval_batches(*, dataset=None, rec_val=None, rec_val_idx=None, data_dir=None, image_folder=None,
                 class_names=None, batch_size=32, num_workers=0, input_size=None, crop_ratio=IMAGENET.crop_ratio,
                 mean=None, std=None, classes=None, run_data=None):
    """Validation batches from exactly one source, with GluonCV's centre-crop preprocessing.

    Parameters
    ----------
    dataset : {'demo'}, optional
        The bundled handwritten digits (held-out split; 32x32 by default, as
        the demo trains).
    rec_val, rec_val_idx : str, optional
        ImageNet-style validation RecordIO (the ``.idx`` defaults to the one
        beside the ``.rec``).
    data_dir : str, optional
        ImageNet folder layout: ``DIR/val/<class>/*`` (labels from the sorted
        ``DIR/train`` class folders when present).
    image_folder : str, optional
        Any folder of class subfolders ``DIR/<class>/*``.
    class_names : str, optional
        With ``image_folder``: a text file, one class folder name per line,
        giving each folder its label (line number from 0), for a folder that
        holds a subset of the model's classes.
    batch_size, num_workers : int
    input_size : int, optional
        Network input side (default ImageNet's, 224; 32 for the demo).
    crop_ratio : float
    mean, std : sequence of 3 float, optional
        RGB normalisation on the 0-255 scale (default ImageNet's).
    classes : sequence of str, optional
        With ``image_folder`` and no ``class_names`` file: the class names by
        label (a checkpoint's, :func:`gluon_asymmnet.evaluation.cli.run_defaults`).
    run_data : dict, optional
        Without any other source: a training run's validation data
        (:attr:`RunInfo.val_data <gluon_asymmnet.run_meta.RunInfo>`; ``{}`` is
        the digits), e.g. the held-out split of a single image folder.

    Returns
    -------
    (ImageBatches, dict)
        Batches and ``source``, ``input_size``, ``crop_ratio``, ``num_classes``
        (known classes, or None), ``num_samples``.

    Raises
    ------
    EvalError, gluon_asymmnet.data.DataError
    """
    given = [n for n, v in (('--dataset', dataset), ('--rec-val', rec_val), ('--data-dir', data_dir),
                            ('--image-folder', image_folder)) if v is not None]
    if not given and run_data is not None:
        if not run_data:
            dataset = 'demo'
        else:
            input_size = input_size or IMAGENET.input_size
            common = dict(batch_size=batch_size, num_workers=num_workers, crop_ratio=crop_ratio)
            common.update({k: v for k, v in (('mean', mean), ('std', std)) if v is not None})
            batches = get_data_loaders(train=False, input_size=input_size, **run_data, **common)[1]
            source = 'the validation data of the checkpoint\'s run (%s)' % ', '.join(
                '%s=%s' % kv for kv in sorted(run_data.items()))
            names = getattr(batches, 'class_names', None)
            return batches, {'source': source, 'input_size': input_size, 'crop_ratio': crop_ratio,
                             'num_classes': len(names) if names else None, 'num_samples': batches.num_samples}
        given = ['--dataset']
    if len(given) != 1:
        raise EvalError('give exactly one data source (--dataset demo, --rec-val, --data-dir or '
                        '--image-folder), got %s' % (', '.join(given) or 'none'))
    if rec_val_idx is not None and rec_val is None:
        raise EvalError('--rec-val-idx needs --rec-val')
    if class_names is not None and image_folder is None:
        raise EvalError('--class-names applies to --image-folder only')
    common = dict(batch_size=batch_size, num_workers=num_workers, crop_ratio=crop_ratio)
    common.update({k: v for k, v in (('mean', mean), ('std', std)) if v is not None})
    num_classes = None
    if dataset is not None:
        if dataset != 'demo':
            raise EvalError('unknown --dataset %r; the bundled one is "demo" (give ImageNet with '
                            '--rec-val or --data-dir)' % dataset)
        demo = demo_dataset()
        input_size = input_size or demo['input_size']
        batches = get_data_loaders(rec_val=demo['rec_val'], rec_val_idx=demo['rec_val_idx'], train=False,
                                   input_size=input_size, **common)[1]
        source, num_classes = 'demo digits (%s)' % demo['rec_val'], len(demo['classes'])
    elif rec_val is not None:
        input_size = input_size or IMAGENET.input_size
        batches = get_data_loaders(rec_val=rec_val, rec_val_idx=rec_val_idx, train=False,
                                   input_size=input_size, **common)[1]
        source = rec_val
    elif data_dir is not None:
        input_size = input_size or IMAGENET.input_size
        batches = get_data_loaders(data_dir=data_dir, train=False, input_size=input_size, **common)[1]
        source = os.path.join(data_dir, 'val')
    else:
        input_size = input_size or IMAGENET.input_size
        classes = _read_class_names(class_names) if class_names else classes
        batches = folder_batches(image_folder, input_size=input_size, classes=classes, **common)
        source = image_folder
        num_classes = len(classes) if classes else None
    names = getattr(batches, 'class_names', None)
    if num_classes is None and names:
        num_classes = len(names)
    return batches, {'source': source, 'input_size': input_size, 'crop_ratio': crop_ratio,
                     'num_classes': num_classes, 'num_samples': batches.num_samples}


def calibration_images(batches, num_images):
    """The first ``num_images`` preprocessed images of ``batches`` as a float32 NumPy array."""
    if hasattr(batches, 'reset'):
        batches.reset()
    parts, have = [], 0
    for data, _ in batches:
        parts.append(data.asnumpy())
        have += data.shape[0]
        if have >= num_images:
            break
    if not parts:
        raise EvalError('no calibration image: the batches are empty')
    return np.concatenate(parts)[:num_images].astype(np.float32)
