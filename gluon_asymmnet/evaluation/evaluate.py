"""Top-1/top-5 of a network on evaluation data, after checking that the two fit together."""
import mxnet as mx

from ..memory import MemoryEstimateError, check_step_fits
from ..metrics import evaluate_accuracy
from .errors import EvalError

__all__ = ['output_classes', 'evaluate']


def output_classes(net, input_size):
    """How many classes ``net`` predicts, from its graph at ``input_size`` (EvalError if it cannot run there)."""
    try:
        out = net(mx.sym.var('data')).infer_shape(data=(1, 3, input_size, input_size))[1][0]
    except mx.base.MXNetError as err:
        raise EvalError('the model cannot run on %dx%d inputs: %s'
                        % (input_size, input_size, str(err).strip().splitlines()[-1]))
    return out[-1]


def evaluate(net, batches, info=None, ctx=None, progress=False):
    """Top-1/top-5 of ``net`` over ``batches`` (:func:`gluon_asymmnet.metrics.evaluate_accuracy`).

    Parameters
    ----------
    net : HybridBlock
    batches : ImageBatches
    info : dict, optional
        From :func:`eval_batches`: checks that the data's labels fit the
        model's outputs before anything runs.
    ctx : Context or list of Context, optional
    progress : bool
        tqdm bar.

    Returns
    -------
    dict
        ``top1``, ``top5`` (fractions) and ``num_samples``.
    """
    if info is not None:
        classes = output_classes(net, info['input_size'])
        if info.get('num_classes') and info['num_classes'] > classes:
            raise EvalError('the data has %d classes but the model predicts %d (build it with --classes %d)'
                            % (info['num_classes'], classes, info['num_classes']))
        first = (ctx if isinstance(ctx, (list, tuple)) else [ctx or mx.cpu()])[0]
        try:
            check_step_fits(net, batches.batch_size, info['input_size'], first, False, 'evaluating',
                            'lower --batch-size or --input-size')
        except MemoryEstimateError as err:
            raise EvalError(str(err)) from None
    return evaluate_accuracy(net, batches, ctx=ctx, progress=progress)
