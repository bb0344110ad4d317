"""Which mode a computation is built for: ``'train'``, ``'inference'``, or unknown (None).

The named operations of :mod:`gluon_asymmnet.backend.ops` pick their kernels
by this mode (see the package notes).
"""
import contextlib
import threading

from mxnet import autograd, ndarray

__all__ = ['MODES', 'tracing_mode', 'graph_mode']

MODES = ('train', 'inference')
_TRACE = threading.local()


@contextlib.contextmanager
def tracing_mode(mode):
    """Trace hybrid graphs for ``'train'`` or ``'inference'`` use inside this context.

    A graph traced for ``'inference'`` uses oneDNN's concat, whose backward
    pass fails (package notes): it must never be differentiated.
    :class:`~gluon_asymmnet.backend.TrainInferHybridBlock` enters this context
    around its tracing.
    """
    if mode not in MODES:
        raise ValueError('tracing mode must be one of %s, got %r' % (', '.join(MODES), mode))
    previous = getattr(_TRACE, 'mode', None)
    _TRACE.mode = mode
    try:
        yield
    finally:
        _TRACE.mode = previous


def graph_mode(F):
    """``'train'``, ``'inference'``, or None when the computation may run either way.

    An imperative call (``F`` is ``mx.nd``) knows whether autograd records it.
    A traced graph is cached and may run in both modes unless traced inside
    :func:`tracing_mode`.
    """
    if F is ndarray:
        return 'train' if autograd.is_recording() else 'inference'
    return getattr(_TRACE, 'mode', None)
