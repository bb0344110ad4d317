"""Deterministic, well-conditioned weights for any parameter layout, and the fixed input batch.

``tests/data/released_checkpoint_L1.0.logits.npy`` holds the logits of the
authors' AsymmNet-L 1.0 (inference mode) for :func:`reference_input` with the
weights :func:`reference_weights` draws for the keys of
``tests/data/released_checkpoint_L1.0.manifest.json`` (docs/design.md
section 6). The draws must therefore stay exactly as documented: one
``numpy.random.RandomState(seed)``, the keys in the order given, one draw per
key with the key's whole shape, by the key's suffix:

- ``gamma``, ``running_var``: uniform on [0.5, 1.5);
- ``beta``, ``running_mean``, ``bias``: normal, mean 0, std 0.1;
- any other key (convolution weights): normal, mean 0, std ``sqrt(2 / fan_in)``
  with ``fan_in`` the product of all but the first dimension (He et al. 2015);

each cast to float32. He-scaled weights with BatchNorm statistics near 1 keep
activations of order 1 through the network, so the classifier sees varied
features instead of a saturated head (its bias alone): two networks that differ
anywhere give different logits.

Run as a script to write a parameter file (and the input batch) for a manifest::

    python tests/reference_weights.py MANIFEST.json OUT.params [OUT_INPUT.npy]
"""
import json
import math
import sys
from collections import OrderedDict

import numpy as np

__all__ = ['reference_weights', 'reference_input', 'network_reference_weights']

_UNIFORM_KEYS = ('gamma', 'running_var')
_SMALL_NORMAL_KEYS = ('beta', 'running_mean', 'bias')


def _draw(rng, key, shape):
    if key.endswith(_UNIFORM_KEYS):
        return rng.uniform(0.5, 1.5, shape)
    if key.endswith(_SMALL_NORMAL_KEYS):
        return rng.normal(0.0, 0.1, shape)
    fan_in = int(np.prod(shape[1:]))
    return rng.normal(0.0, math.sqrt(2.0 / fan_in), shape)


def reference_weights(keys, seed=0):
    """``{key: float32 array}`` for ``keys``, a sequence of ``(key, shape)`` in draw order."""
    rng = np.random.RandomState(seed)
    out = OrderedDict()
    for key, shape in keys:
        out[key] = _draw(rng, key, tuple(shape)).astype(np.float32)
    return out


def reference_input(shape=(2, 3, 224, 224), seed=1):
    """The fixed input batch: uniform on [-1, 1), float32."""
    return np.random.RandomState(seed).uniform(-1, 1, shape).astype(np.float32)


def network_reference_weights(net, seed=0):
    """Set every parameter of an initialized Gluon network to :func:`reference_weights`.

    The keys are the network's structural names (``features.3.conv1.conv.weight``)
    in the order Gluon lists them; returns the arrays set.
    """
    import mxnet as mx
    params = net._collect_params_with_prefix()
    weights = reference_weights([(k, p.shape) for k, p in params.items()], seed)
    for k, p in params.items():
        p.set_data(mx.nd.array(weights[k], dtype=p.dtype))
    return weights


def main(argv):
    import mxnet as mx
    with open(argv[1]) as f:
        keys = json.load(f)['keys']
    mx.nd.save(argv[2], {k: mx.nd.array(v) for k, v in reference_weights(keys).items()})
    if len(argv) > 3:
        np.save(argv[3], reference_input())


if __name__ == '__main__':
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(sys.argv)
