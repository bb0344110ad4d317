import json
import os
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REFERENCE = os.path.join(os.path.dirname(ROOT), 'shared', 'reference')
sys.path.insert(0, ROOT)


def reference_module():
    sys.path.insert(0, REFERENCE)
    try:
        import make_reference_checkpoint
    finally:
        sys.path.remove(REFERENCE)
    return make_reference_checkpoint


def rel_err(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


def randomized(name, kwargs, seed=0):
    """A network with random weights and non-trivial BatchNorm statistics."""
    import mxnet as mx
    import gluon_asymmnet as ga
    net = ga.get_model(name, **kwargs)
    mx.random.seed(seed)
    net.initialize(mx.init.Xavier(magnitude=2))
    rng = np.random.RandomState(seed)
    for key, p in net.collect_params().items():
        if key.endswith(('running_var', 'gamma')):
            p.set_data(mx.nd.array(rng.uniform(0.5, 1.5, p.shape)))
        elif key.endswith(('running_mean', 'beta', 'bias')):
            p.set_data(mx.nd.array(rng.normal(0, 0.1, p.shape)))
    return net


def manifest(name):
    with open(os.path.join(REFERENCE, name)) as f:
        return json.load(f)


@pytest.fixture(scope='session')
def released_params(tmp_path_factory):
    """The deterministic reference weights in the released layout, as a .params file."""
    import mxnet as mx
    ref = reference_module()
    path = str(tmp_path_factory.mktemp('ref') / 'released.params')
    weights = ref.reference_weights(manifest('released_checkpoint_L1.0.manifest.json')['keys'])
    mx.nd.save(path, {k: mx.nd.array(v) for k, v in weights.items()})
    return path


@pytest.fixture(scope='session')
def reference_batch():
    return reference_module().reference_input()


@pytest.fixture(scope='session')
def reference_logits():
    return np.load(os.path.join(REFERENCE, 'released_checkpoint_L1.0.logits.npy'))
