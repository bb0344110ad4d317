"""Top-1/top-5 accuracy of a network over a batch source: the one function every validation uses.

The training loop's ``[Epoch e] validation:`` figures and ``eval.py`` come
from :func:`evaluate_accuracy`, so evaluating a saved checkpoint reproduces
the figure printed when it was saved.
"""
import mxnet as mx
from mxnet import gluon

__all__ = ['evaluate_accuracy']


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
    top1, top5 = mx.metric.Accuracy(), None
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=getattr(batches, 'num_batches', None), desc='evaluate', leave=False)
    num = 0
    try:
        for data, label in batches:
            n = label.shape[0]
            parts = min(len(ctx), n)
            datas = gluon.utils.split_and_load(data, ctx[:parts], even_split=False)
            labels = gluon.utils.split_and_load(label, ctx[:parts], even_split=False)
            outputs = [net(x.astype(dtype, copy=False)).astype('float32', copy=False) for x in datas]
            if top5 is None:   # with fewer than 5 classes top-5 is top-all
                top5 = mx.metric.TopKAccuracy(min(5, outputs[0].shape[1]))
            top1.update(labels, outputs)
            top5.update(labels, outputs)
            num += n
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    if num == 0:
        raise ValueError('evaluate_accuracy: the batches held no sample')
    return {'top1': top1.get()[1], 'top5': top5.get()[1], 'num_samples': num}
