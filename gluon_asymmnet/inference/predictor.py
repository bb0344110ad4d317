"""What a built backend is: a :class:`Predictor`; and :class:`BackendError` for one that could not be built."""
import numpy as np

__all__ = ['BackendError', 'Predictor', 'input_shape']


class BackendError(RuntimeError):
    """A backend that could not be built (its export or quantization failed)."""


def input_shape(batch_size, input_size):
    """``(batch_size, 3, H, W)`` for ``input_size`` ``(H, W)``."""
    return (batch_size, 3) + tuple(input_size)


class Predictor(object):
    """One backend, ready to run: ``predictor(batch) -> logits`` (NumPy float32).

    Batches of any size are cut into (and padded to) the fixed batch size the
    backend was built for, so static-shape graphs never re-plan.

    Attributes
    ----------
    backend : str
    batch_size : int
    input_size : (int, int)
    precision : str
        ``'fp32'`` or ``'int8'``.
    info : dict
        INT8 backends: ``fp32_layers`` (structural names kept in FP32),
        ``calibration_images``, ``calib_mode``; onnxruntime: ``threads``;
        backends that can use :mod:`gluon_asymmnet.fastops`: ``fast_ops``.
    """

    def __init__(self, backend, run, batch_size, input_size, precision='fp32', info=None):
        self.backend, self.batch_size, self.input_size = backend, batch_size, input_size
        self.precision, self.info = precision, dict(info or {})
        self._run = run

    def run_batch(self, x):
        """Run exactly one batch of the built size (no copies, no padding): what is timed."""
        return self._run(x)

    def __call__(self, x):
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.ndim != 4 or x.shape[1] != 3 or tuple(x.shape[2:]) != tuple(self.input_size):
            raise ValueError('%s predictor built for input (N, 3, %d, %d), got %s'
                             % ((self.backend,) + tuple(self.input_size) + (x.shape,)))
        outs = []
        for start in range(0, x.shape[0], self.batch_size):
            part = x[start:start + self.batch_size]
            n = part.shape[0]
            if n < self.batch_size:
                part = np.concatenate([part, np.zeros((self.batch_size - n,) + part.shape[1:], np.float32)])
            outs.append(np.asarray(self._run(part))[:n])
        return np.concatenate(outs)
