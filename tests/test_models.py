"""The models are numerically the authors' network and GluonCV's MobileNetV3."""
import csv
import os

import mxnet as mx
import numpy as np
import pytest

import gluon_asymmnet as ga
from conftest import DATA, assert_sensitive, manifest, randomized, rel_err

# The released logits are the authors' network's outputs (float32) for the reference weights and batch.
RELEASED_TOLERANCE = 1e-4


@pytest.mark.parametrize('hybrid', [False, True])
def test_reproduces_released_logits(released_params, reference_batch, reference_logits, hybrid):
    net = ga.get_model('asymmnet_large')
    assert ga.load_checkpoint(net, released_params) == 'released'
    if hybrid:
        net.hybridize(static_alloc=True, static_shape=True)
    x = mx.nd.array(reference_batch)
    out = net(x).asnumpy()
    assert out.shape == (2, 1000)
    assert rel_err(out, reference_logits) < RELEASED_TOLERANCE
    if not hybrid:
        assert_sensitive(net, x, at_least=10 * RELEASED_TOLERANCE)


def test_sensitivity_check_fails_on_a_saturated_network():
    """What assert_sensitive guards against: a network whose logits are its classifier bias."""
    net = randomized('mobilenetv3_small', dict(multiplier=0.5, classes=10))
    x = mx.nd.array(np.random.RandomState(0).uniform(-1, 1, (2, 3, 64, 64)))
    assert_sensitive(net, x)
    net.output[0].weight.set_data(mx.nd.zeros(net.output[0].weight.shape))
    with pytest.raises(AssertionError, match='insensitive comparison'):
        assert_sensitive(net, x)


def test_structural_keys_are_the_released_layout():
    net = ga.get_model('asymmnet_large')
    expected = {k: tuple(s) for k, s in manifest('released_checkpoint_L1.0.manifest.json')['keys']}
    got = {k: p.shape for k, p in net._collect_params_with_prefix().items()}
    assert got == expected


with open(os.path.join(DATA, 'counts.csv')) as _f:
    COUNTS = list(csv.DictReader(_f))


@pytest.mark.parametrize('row', COUNTS, ids=lambda r: '%s-%s-r%s' % (r['model'], r['multiplier'], r['asymmrate']))
def test_profile_matches_counts_csv(row):
    net = ga.get_model(row['model'], multiplier=float(row['multiplier']), asymmrate=int(row['asymmrate']))
    p = ga.profile(net)
    assert (p['macs'], p['params'], p['params_paper']) == (
        int(row['macs']), int(row['params_exact']), int(row['params_paper_convention']))
    assert all(isinstance(p[k], int) for k in ('macs', 'params', 'params_paper'))


def test_profile_per_layer_table_adds_up():
    net = ga.get_model('asymmnet_small')
    p = ga.profile(net, per_layer=True)
    assert sum(r['macs'] for r in p['layers']) == p['macs']
    assert sum(r['params'] for r in p['layers']) == p['params']
    names = [r['name'] for r in p['layers']]
    assert 'features.3.se.conv1' in names and 'output.0' in names


def test_profile_scales_with_input_size():
    net = ga.get_model('mobilenetv3_small')
    small, big = ga.profile(net, input_size=112), ga.profile(net, input_size=224)
    assert small['params'] == big['params']
    assert small['macs'] < big['macs'] / 3


@pytest.mark.parametrize('kwargs, words', [
    (dict(name='asymmnet_large', multiplier=0.35, asymmrate=2), ['features.', 'asymmrate 2', 'input 16']),
    (dict(name='asymmnet_large', multiplier=1.25, asymmrate=1), ['features.3', 'corrected_first_block=True']),
    (dict(name='asymmnet_small', multiplier=1.25, asymmrate=1), ['features.3', 'corrected_first_block=True']),
    (dict(name='asymmnet_small', multiplier=0.35, asymmrate=2), ['features.', 'asymmrate 2']),
    (dict(name='asymmnet_large', shuffle_groups=7), ['shuffle_groups=7', 'features.4']),
    (dict(name='asymmnet_large', asymmrate=-1), ['asymmrate', '-1']),
    (dict(name='asymmnet_large', multiplier=0), ['multiplier', '0']),
    (dict(name='asymmnet_small', multiplier=-0.5), ['multiplier', '-0.5']),
])
def test_invalid_configurations_are_refused_at_construction(kwargs, words):
    name = kwargs.pop('name')
    with pytest.raises(ValueError) as err:
        ga.get_model(name, **kwargs)
    for w in words:
        assert w in str(err.value)


def test_valid_shuffle_runs_and_permutes_channels():
    """Same parameters, with and without the shuffle: the shuffle changes what the depthwise convs see."""
    shuffled = randomized('asymmnet_small', dict(multiplier=0.5, shuffle_groups=2, classes=5))
    plain = randomized('asymmnet_small', dict(multiplier=0.5, classes=5))
    x = mx.nd.array(np.random.RandomState(0).uniform(-1, 1, (1, 3, 64, 64)))
    out = shuffled(x).asnumpy()
    assert out.shape == (1, 5)
    assert rel_err(out, plain(x).asnumpy()) > 1e-2


def test_unknown_model_lists_valid_names():
    with pytest.raises(ValueError) as err:
        ga.get_model('asymmnet_huge')
    for name in ga.get_model_list():
        assert name in str(err.value)
    assert set(ga.get_model_list()) >= {'asymmnet_large', 'asymmnet_small', 'mobilenetv3_large', 'mobilenetv3_small'}


def test_authors_code_layout_loads(released_params, tmp_path, reference_batch, reference_logits):
    arrays = mx.nd.load(released_params)
    renamed = {k.replace('.conv1.', '.dw_conv.', 1) if '.se.' not in k else k: v for k, v in arrays.items()}
    renamed = {k.replace('.conv2.', '.pw_conv_linear.', 1) if '.se.' not in k else k: v for k, v in renamed.items()}
    expected = {k for k, _ in manifest('authors_code_L1.0.manifest.json')['keys']}
    assert set(renamed) == expected
    path = str(tmp_path / 'authors.params')
    mx.nd.save(path, renamed)
    net = ga.get_model('asymmnet_large')
    assert ga.load_checkpoint(net, path) == 'authors-code'
    x = mx.nd.array(reference_batch)
    assert rel_err(net(x).asnumpy(), reference_logits) < RELEASED_TOLERANCE
    assert_sensitive(net, x, at_least=10 * RELEASED_TOLERANCE)
