"""``eval.py --benchmark``: the inference backends side by side, calibrated on images that fit the data."""
from ..data import demo_dataset, get_data_loaders
from ..inference import INT8_BACKENDS, benchmark
from ..preprocessing import IMAGENET
from .batches import calibration_images

__all__ = ['benchmark_model']


def benchmark_model(net, backends, *, batches=None, info=None, input_size=224, batch_sizes=(1, 32), warmup=5,
                    repeats=20, calib_images=64, calib_mode='naive', exclude=None, threads=None, workdir=None,
                    progress=None, ort_spinning=False):
    """:func:`gluon_asymmnet.inference.benchmark` with calibration images chosen for the data.

    Calibration uses real images that are not scored when possible: the demo
    digits' training split (with ``--dataset demo``, and when no data is
    given); otherwise the first ``calib_images`` images of the evaluation data.

    Returns
    -------
    dict
        :func:`~gluon_asymmnet.inference.benchmark`'s result, with
        ``setup['calibration']`` naming the images used.
    """
    calib, calib_source = None, None
    if any(b in INT8_BACKENDS for b in backends):
        demo_source = info is None or info['source'].startswith('demo digits')
        if demo_source:
            demo = demo_dataset()
            size = info['input_size'] if info else demo['input_size']
            train_split = get_data_loaders(rec_val=demo['rec_train'], rec_val_idx=demo['rec_train_idx'],
                                           train=False, input_size=size, batch_size=32, num_workers=0,
                                           crop_ratio=info['crop_ratio'] if info else IMAGENET.crop_ratio)[1]
            calib = calibration_images(train_split, calib_images)
            calib_source = 'demo digits training split, %d images' % len(calib)
        else:
            calib = calibration_images(batches, calib_images)
            calib_source = 'first %d images of %s' % (len(calib), info['source'])
    result = benchmark(net, backends, input_size=input_size, batch_sizes=batch_sizes, warmup=warmup,
                       repeats=repeats, calib=calib, eval_batches=batches,
                       eval_input_size=info['input_size'] if info else None, threads=threads, workdir=workdir,
                       calib_mode=calib_mode, exclude=exclude, progress=progress, ort_spinning=ort_spinning)
    result['setup']['calibration'] = calib_source
    return result
