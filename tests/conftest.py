"""Shared fixtures: the reference data in tests/data, well-conditioned weights, and logit comparisons
that prove they can fail."""
import json
import os
import sys

import numpy as np
import pytest

# One OpenMP thread in the test processes and in the scripts they start, as `make test` runs them, however
# pytest is started: tests that compare a script's training with one in the test process (exact resume after
# kill -9) need both to sum in the same order, and the scripts default to every physical core.
os.environ.setdefault('OMP_NUM_THREADS', '1')
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, 'tests', 'data')
sys.path.insert(0, ROOT)

from gluon_asymmnet.metrics import relative_error as rel_err  # noqa: E402
from reference_weights import network_reference_weights, reference_input, reference_weights  # noqa: E402

# The first block's depthwise weights: every network has them, and any change of
# the first block (the original codes' quirk, docs/design.md section 8) passes through them.
FIRST_BLOCK_WEIGHT = 'features.3.conv1.conv.weight'


def manifest(name):
    with open(os.path.join(DATA, name)) as f:
        return json.load(f)


def randomized(name, kwargs, seed=0):
    """``get_model(name, **kwargs)`` with the well-conditioned reference weights (tests/reference_weights.py)."""
    import gluon_asymmnet as ga
    net = ga.get_model(name, **kwargs)
    net.initialize()
    network_reference_weights(net, seed)
    return net


def noise_floor(net, x, rel=1e-7, seed=0):
    """The relative change of ``net``'s output for a random relative change ``rel`` of its input.

    What float32 rounding alone moves the output by: two computations of the
    same function in a different order differ by about this much.
    """
    import mxnet as mx
    xn = x.asnumpy()
    step = rel * np.abs(xn).max() * np.random.RandomState(seed).choice([-1.0, 1.0], xn.shape)
    return rel_err(net(mx.nd.array(xn + step, dtype=x.dtype)).asnumpy(), net(x).asnumpy())


def logit_tolerance(net, x):
    """Relative logit error allowed against ``net``: 1e-4, or 5 times its float32 noise floor when larger."""
    return max(1e-4, 5 * noise_floor(net, x))


def _outputs(forward, x):
    out = forward(x)
    return [o.asnumpy() for o in out] if isinstance(out, (list, tuple)) else [out.asnumpy()]


def assert_sensitive(net, x, key=FIRST_BLOCK_WEIGHT, factor=1.5, at_least=1e-3, forward=None):
    """Fail unless scaling ``net``'s parameter ``key`` by ``factor`` moves its output by more than ``at_least``.

    A comparison against ``net``'s output at a tolerance below ``at_least`` can
    then fail: a saturated network (every logit its classifier bias) would pass
    any comparison. ``forward`` (default ``net``) computes the output from
    ``x`` with ``net``'s parameters; when it returns several outputs (feature
    maps), each must move. The parameter is restored; returns the smallest
    relative move.
    """
    import mxnet as mx
    forward = forward or net
    param = net._collect_params_with_prefix()[key]
    before = _outputs(forward, x)
    saved = param.data().copy()
    param.set_data(saved * factor)
    try:
        moved = min(rel_err(a, b) for a, b in zip(_outputs(forward, x), before))
    finally:
        param.set_data(saved)
    mx.nd.waitall()
    assert moved > at_least, ('insensitive comparison: scaling %s by %g moved the output by %.3g relative, '
                              'not more than %g' % (key, factor, moved, at_least))
    return moved


def assert_same_logits(ours, theirs, x, key=FIRST_BLOCK_WEIGHT):
    """``ours(x)`` equals ``theirs(x)`` to :func:`logit_tolerance`, and ``theirs`` is sensitive beyond it.

    Returns ``(error, tolerance, sensitivity)``.
    """
    reference = theirs(x).asnumpy()
    tolerance = logit_tolerance(theirs, x)
    error = rel_err(ours(x).asnumpy(), reference)
    assert error < tolerance, 'logits differ by %.3g relative (tolerance %.3g)' % (error, tolerance)
    sensitivity = assert_sensitive(theirs, x, key, at_least=max(1e-3, 10 * tolerance))
    return error, tolerance, sensitivity


@pytest.fixture(scope='session')
def released_params(tmp_path_factory):
    """The deterministic reference weights in the released layout, as a .params file."""
    import mxnet as mx
    path = str(tmp_path_factory.mktemp('ref') / 'released.params')
    weights = reference_weights(manifest('released_checkpoint_L1.0.manifest.json')['keys'])
    mx.nd.save(path, {k: mx.nd.array(v) for k, v in weights.items()})
    return path


@pytest.fixture(scope='session')
def reference_batch():
    return reference_input()


@pytest.fixture(scope='session')
def reference_logits():
    return np.load(os.path.join(DATA, 'released_checkpoint_L1.0.logits.npy'))
