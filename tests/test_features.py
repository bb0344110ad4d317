"""Feature maps at strides 4, 8, 16, 32: shapes, channels, equality with the network's own layers."""
import mxnet as mx
import pytest

import gluon_asymmnet as ga
from conftest import assert_sensitive, randomized, rel_err
from gluon_asymmnet.features import FeatureExtractor, layer_strides
from gluon_asymmnet.model_zoo import get_feature_extractor

# (model, kwargs, expected channels at strides 4, 8, 16, 32)
CASES = [
    ('asymmnet_large', {}, (24, 40, 112, 960)),
    ('asymmnet_small', {}, (16, 24, 48, 576)),
    ('mobilenetv3_large', {}, (24, 40, 112, 960)),
    ('mobilenetv3_small', {}, (16, 24, 48, 576)),
    ('asymmnet_large', dict(multiplier=0.5, asymmrate=2), (16, 24, 56, 480)),
    ('asymmnet_small', dict(multiplier=0.75, asymmrate=1, shuffle_groups=2), (16, 24, 40, 432)),
    ('mobilenetv2', {}, (24, 32, 96, 1280)),
    ('mobilenetv2_asymm', dict(multiplier=0.5, asymmrate=2), (12, 16, 48, 1280)),
]


# Maps agree to this relative error (they are computed by the same layers: exactly, in practice). With the
# well-conditioned weights of `randomized`, assert_sensitive(..., forward=fe) shows that a first-block change
# moves every map by more than 1e-3, so each comparison can fail.
TOLERANCE = 1e-5


def _sequential_outputs(net, x):
    """Every child output of net.features, computed one child at a time."""
    outs = []
    for child in net.features:
        x = child(x)
        outs.append(x.asnumpy())
    return outs


@pytest.mark.parametrize('name,kwargs,channels', CASES, ids=lambda v: str(v))
def test_shapes_channels_and_equality(name, kwargs, channels):
    net = randomized(name, kwargs)
    fe = FeatureExtractor(net)
    assert fe.channels == channels
    for size in [(224, 224), (160, 96)]:
        x = mx.nd.random.uniform(-1, 1, shape=(2, 3) + size)
        maps = fe(x)
        assert len(maps) == 4
        for m, stride, c in zip(maps, (4, 8, 16, 32), channels):
            assert m.shape == (2, c, size[0] // stride, size[1] // stride)
        reference = _sequential_outputs(net, x)
        for m, i in zip(maps, fe.indices):
            assert rel_err(m.asnumpy(), reference[i]) < TOLERANCE
        # Each map is the last one at its stride: the next layer halves it (or pools).
        for i in fe.indices:
            assert reference[i + 1].shape[2] < reference[i].shape[2]
    assert_sensitive(net, x, forward=fe)


def test_stride32_map_feeds_the_classifier_exactly():
    net = randomized('asymmnet_large', {})
    fe = FeatureExtractor(net)
    assert fe.indices[-1] == 20  # head conv (18), BN (19), hard swish (20), before pooling

    def through_the_map(x):
        rest = fe(x)[-1]
        for child in list(net.features)[fe.indices[-1] + 1:]:
            rest = child(rest)
        return net.output(rest)
    x = mx.nd.random.uniform(-1, 1, shape=(2, 3, 128, 128))
    assert rel_err(through_the_map(x).asnumpy(), net(x).asnumpy()) < TOLERANCE
    assert_sensitive(net, x)


def test_forward_hooks_on_the_full_network_agree():
    net = randomized('asymmnet_small', {})
    fe = FeatureExtractor(net)
    seen = {}
    handles = [net.features[i].register_forward_hook(
        lambda blk, inp, out, i=i: seen.__setitem__(i, out.asnumpy())) for i in fe.indices]
    x = mx.nd.random.uniform(-1, 1, shape=(1, 3, 128, 128))
    net(x)
    for h in handles:
        h.detach()
    for m, i in zip(fe(x), fe.indices):
        assert rel_err(m.asnumpy(), seen[i]) < TOLERANCE
    assert_sensitive(net, x, forward=fe)


def test_hybridized_and_shares_parameters(tmp_path):
    net = randomized('asymmnet_large', dict(multiplier=0.35, asymmrate=1))
    fe = FeatureExtractor(net)
    x = mx.nd.random.uniform(-1, 1, shape=(1, 3, 96, 128))
    eager = [m.asnumpy() for m in fe(x)]
    fe.hybridize(static_alloc=True, static_shape=True)
    hybrid = fe(x)
    for a, b in zip(hybrid, eager):
        assert rel_err(a.asnumpy(), b) < TOLERANCE
    assert_sensitive(net, x, forward=fe)
    # The same Parameter objects: loading other weights into the network changes the features.
    assert set(fe.collect_params().values()) <= set(net.collect_params().values())
    other = randomized('asymmnet_large', dict(multiplier=0.35, asymmrate=1), seed=7)
    path = str(tmp_path / 'other.params')
    other.save_parameters(path)
    net.load_parameters(path)
    fe2 = FeatureExtractor(net)
    changed = fe2(x)
    expected = [other.features[: i + 1](x).asnumpy() for i in fe.indices]
    for a, b, before in zip(changed, expected, eager):
        assert rel_err(a.asnumpy(), b) < TOLERANCE and rel_err(a.asnumpy(), before) > 1e-3


def test_layer_strides_and_errors():
    net = ga.get_model('mobilenetv3_small')
    strides = [s for s, _ in layer_strides(net)]
    assert strides[:3] == [2, 2, 2] and strides[3] == 4 and max(strides) == 32
    fe = get_feature_extractor('mobilenetv3_small', strides=(8, 32))
    assert fe.channels == (24, 576)
    with pytest.raises(ValueError, match='no feature map at stride 64; available strides: 2, 4, 8, 16, 32'):
        FeatureExtractor(net, strides=(16, 64))
    with pytest.raises(ValueError, match='increasing'):
        FeatureExtractor(net, strides=(32, 16))
    with pytest.raises(TypeError, match='features'):
        FeatureExtractor(mx.gluon.nn.Dense(3))
