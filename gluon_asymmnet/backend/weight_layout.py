"""oneDNN's in-place weight reorders, finished before a forward call returns.

MXNet 1.9.1's oneDNN convolution, in inference (``autograd.is_training()``
false), converts a weight held in MXNet's plain layout into oneDNN's blocked
layout in place (``NDArray::MKLDNNDataReorderAsync``), so that later calls
skip the conversion; in training it converts a blocked weight back to plain
(``Reorder2DefaultAsync``). The convolution pushes that write to the engine
while it runs, that is after the forward call has returned, so a read of the
parameter made in between (``net(x)`` then ``p.data().asnumpy()``, nothing
awaited) has already passed its wait and copies the buffer while it is
rewritten: values that are neither before nor after. It hit SE convolutions,
1x1 convolutions and the classifier of AsymmNet-L in about half of fresh
processes; never with NaiveEngine or ``MXNET_MKLDNN_ENABLED=0``. (Loading
into a network is unaffected: ``set_data`` of an NDArray copies into the
blocked layout in engine order.)

The rewrite happens once per weight array and mode: later calls in the same
mode use the weights as they are. :class:`WeightLayoutSafeBlock` (the base of
the package's networks and feature extractor) therefore has its
:class:`WeightLayoutGuard` wait for the engine (``mx.nd.waitall``) at the end
of the calls that can rewrite weights, and only those: the first call in a
mode (training or inference) after the previous call ran in the other mode,
after a parameter got new arrays (``initialize``, ``cast``, ``reset_ctx``, a
first load), or after ``hybridize``; and the first inference call at a new
input shape (oneDNN may choose another layout for it). All other calls return at once. Calling a
child block directly (``net.features(x)``) is not guarded.
"""
import operator

from mxnet import autograd, ndarray
from mxnet.gluon.block import HybridBlock

__all__ = ['WeightLayoutGuard', 'WeightLayoutSafeBlock']

# Input shapes remembered per settled state (a server resizing images freely waits once per
# shape until this many, then starts again).
_MAX_SHAPES = 64


class WeightLayoutGuard:
    """Decides, after each forward call of one network, whether to wait for its weight reorders.

    Holds references to the parameters' array lists of the last settled
    state (freed at the next call after they change).
    """

    def __init__(self):
        self._params = None
        self._state = None
        self._shapes = set()

    def reset(self):
        """Forget the settled state (the network's graph or children changed)."""
        self._params, self._state = None, None
        self._shapes = set()

    def after_call(self, block, inputs):
        """Wait for pending weight reorders if this call can have started some."""
        if self._params is None:
            # oneDNN rewrites the weights of convolutions and dense layers, named *weight.
            self._params = [p for p in block.collect_params().values() if p.name.endswith('weight')]
        training = autograd.is_training()
        arrays = [p._data for p in self._params]
        shape = tuple(x.shape for x in inputs if isinstance(x, ndarray.NDArray))
        state = self._state
        if state is not None and state[0] == training and all(map(operator.is_, state[1], arrays)):
            if training or shape in self._shapes:
                return
        else:
            self._shapes = set()
        ndarray.waitall()
        self._state = (training, arrays)
        if len(self._shapes) >= _MAX_SHAPES:
            self._shapes = set()
        self._shapes.add(shape)


class WeightLayoutSafeBlock(HybridBlock):
    """A HybridBlock whose calls return only when the weight rewrites they started are done."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._weight_guard = WeightLayoutGuard()

    def forward(self, x, *args):
        out = super().forward(x, *args)
        if isinstance(x, ndarray.NDArray):
            self._weight_guard.after_call(self, (x,) + args)
        return out

    def _clear_cached_op(self):
        super()._clear_cached_op()
        # HybridBlock.__init__ clears the cache before the guard exists.
        if hasattr(self, '_weight_guard'):
            self._weight_guard.reset()
