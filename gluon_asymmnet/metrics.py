"""How right a network is: top-1/top-5 accuracy over batches, and the relative error between two outputs.

:func:`evaluate_accuracy` is the one function every validation uses: the
training loop's ``[Epoch e] validation:`` figures, ``eval.py`` and the demo
come from it, so evaluating a saved checkpoint reproduces the figure printed
when it was saved. :func:`predictor_accuracy` counts the same way for the
inference backends of :mod:`gluon_asymmnet.inference`.
"""
import mxnet as mx
import numpy as np
from mxnet import gluon

__all__ = ['TopK', 'evaluate_accuracy', 'predictor_accuracy', 'relative_error']


def _numpy(x):
    return x.asnumpy() if hasattr(x, 'asnumpy') else np.asarray(x)


class TopK(object):
    """Running top-1 and top-5 counts (top-all with fewer than 5 classes).

    A sample counts for top-k when its label is among the ``k`` largest
    logits; ties rank the lower class index first, so top-1 is ``argmax``.
    """

    def __init__(self):
        self.top1 = self.top5 = self.num = 0

    def update(self, logits, labels):
        logits, labels = _numpy(logits), _numpy(labels).astype(np.int64).ravel()
        top = np.argsort(-logits, axis=1, kind='stable')[:, :5]
        self.top1 += int((top[:, 0] == labels).sum())
        self.top5 += int((top == labels[:, None]).any(axis=1).sum())
        self.num += len(labels)

    def result(self, who):
        """``{'top1', 'top5', 'num_samples'}``; ``who`` names the caller in the error for no samples."""
        if self.num == 0:
            raise ValueError('%s: the batches held no sample' % who)
        return {'top1': self.top1 / self.num, 'top5': self.top5 / self.num, 'num_samples': self.num}


def evaluate_accuracy(net, batches, ctx=None, progress=False):
    """Top-1 and top-5 accuracy of ``net`` (in inference mode) over every sample of ``batches``.

    Parameters
    ----------
    net : mxnet.gluon.Block
        The network; its parameters' dtype decides the input dtype.
    batches : iterable
        Yields ``(data, label)`` NDArrays; ``reset()`` is called first when it
        has one.
    ctx : Context or list of Context, optional
        Devices to split each batch over (default: CPU).
    progress : bool
        Show a tqdm bar.

    Returns
    -------
    dict
        ``top1`` and ``top5`` (fractions in [0, 1]) and ``num_samples``.
    """
    if ctx is None:
        ctx = [mx.cpu()]
    elif isinstance(ctx, mx.Context):
        ctx = [ctx]
    dtype = next(iter(net.collect_params().values())).dtype
    if hasattr(batches, 'reset'):
        batches.reset()
    counts = TopK()
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=getattr(batches, 'num_batches', None), desc='evaluate', leave=False)
    try:
        for data, label in batches:
            parts = min(len(ctx), label.shape[0])
            datas = gluon.utils.split_and_load(data, ctx[:parts], even_split=False)
            labels = gluon.utils.split_and_load(label, ctx[:parts], even_split=False)
            for x, y in zip(datas, labels):
                counts.update(net(x.astype(dtype, copy=False)).astype('float32', copy=False), y)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return counts.result('evaluate_accuracy')


def predictor_accuracy(predictor, batches):
    """Top-1/top-5 of a predictor (NumPy batch -> logits) over ``(data, label)`` batches, as
    :func:`evaluate_accuracy` counts them.

    Returns
    -------
    dict
        ``top1``, ``top5`` (fractions) and ``num_samples``.
    """
    if hasattr(batches, 'reset'):
        batches.reset()
    counts = TopK()
    for data, label in batches:
        counts.update(predictor(_numpy(data)), label)
    return counts.result('predictor_accuracy')


def relative_error(found, expected):
    """``max |found - expected| / max |expected|``."""
    return float(np.abs(found - expected).max() / max(float(np.abs(expected).max()), 1e-30))
