"""A HybridBlock with one cached graph per mode, by overriding MXNet's private cached-graph methods."""
from mxnet import autograd, ndarray
from mxnet.gluon.block import HybridBlock

from .modes import MODES, tracing_mode
from .weight_layout import WeightLayoutSafeBlock

__all__ = ['TrainInferHybridBlock']


class TrainInferHybridBlock(WeightLayoutSafeBlock):
    """A HybridBlock that, hybridized, keeps one cached graph per autograd mode.

    Calls under ``autograd.record()`` run a graph traced for ``'train'``,
    other calls one traced for ``'inference'`` (:func:`tracing_mode`), so the
    operations of :mod:`gluon_asymmnet.backend.ops` pick the kernels that are
    fast and correct for each (package notes). Both graphs share the
    parameters; each is traced on its first use and cached with the
    ``hybridize`` flags; ``hybridize``, ``cast`` or a new child drops both. A
    graph built outside a call (``optimize_for``, ``infer_shape``) is traced
    for either mode and serves training. ``export`` writes the inference
    graph (``mode='train'``: the training graph); ``save_parameters`` and
    ``export`` wait for pending computation first. A call that makes oneDNN
    rewrite the weights' layout returns only when the rewrite is done
    (:class:`WeightLayoutSafeBlock`), so reading a parameter right after a
    call is safe.

    MXNet 1.9.1's ``HybridBlock`` keeps its one graph in ``_cached_graph``,
    ``_cached_op`` and ``_cached_op_args``, built by ``_call_cached_op`` and
    dropped by ``_clear_cached_op``; this class swaps those per mode.
    """

    _CACHE_STATE = ('_cached_graph', '_cached_op', '_cached_op_args')

    def _call_cached_op(self, *args):
        mode = 'train' if autograd.is_recording() else 'inference'
        current = getattr(self, '_cache_mode', None)
        if current is None and self._cached_op is not None:
            current = 'train'
        if mode != current:
            caches = getattr(self, '_mode_caches', {})
            if current is not None:
                caches[current] = tuple(getattr(self, k) for k in self._CACHE_STATE)
            saved = caches.pop(mode, None)
            if saved is None:
                HybridBlock._clear_cached_op(self)
            else:
                for k, v in zip(self._CACHE_STATE, saved):
                    setattr(self, k, v)
            self._mode_caches, self._cache_mode = caches, mode
        with tracing_mode(mode):
            return super()._call_cached_op(*args)

    def _clear_cached_op(self):
        super()._clear_cached_op()
        self._mode_caches, self._cache_mode = {}, None

    def save_parameters(self, filename, deduplicate=False):
        """:meth:`Block.save_parameters` after all pending computation has finished.

        A static-alloc graph updates BatchNorm's running statistics outside
        the parameters' dependency tracking: saving right after a training
        step (even after ``Trainer.step``) wrote stale statistics (measured).
        """
        ndarray.waitall()
        super().save_parameters(filename, deduplicate)

    def export(self, path, epoch=0, remove_amp_cast=True, mode='inference'):
        """Export the graph of ``mode``, as :meth:`HybridBlock.export` does the cached one.

        ``'inference'`` (default): oneDNN's concat, whose backward fails on
        CPU (defect 1 of the package notes), so the exported symbol is for
        inference only. ``'train'``: the training graph (MXNet's concat on
        ``dim=-3``, ``clip`` and ``mean``), the same values; an imported copy
        can be trained on a oneDNN CPU. MXNet's ONNX exporter writes its
        ``mean`` as an invalid ReduceMean, so ONNX files come from the
        inference graph. The cached graph of that mode is exported, or one
        traced for it from the same inputs. Pending computation finishes first
        (see :meth:`save_parameters`).
        """
        if mode not in MODES:
            raise ValueError('export mode must be one of %s, got %r' % (', '.join(MODES), mode))
        ndarray.waitall()
        saved = tuple(getattr(self, k) for k in self._CACHE_STATE)
        try:
            if getattr(self, '_cache_mode', None) != mode and self._cached_graph:
                cached = getattr(self, '_mode_caches', {}).get(mode)
                if cached is not None:
                    self._cached_graph = cached[0]
                else:
                    inputs = self._cached_graph[0]
                    self._cached_graph = ()
                    with tracing_mode(mode):
                        self._get_graph(*inputs)
            return super().export(path, epoch, remove_amp_cast)
        finally:
            for k, v in zip(self._CACHE_STATE, saved):
                setattr(self, k, v)
