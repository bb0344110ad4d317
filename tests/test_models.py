"""The models are numerically the authors' network and GluonCV's MobileNetV3."""
import csv
import os

import mxnet as mx
import numpy as np
import pytest

import gluon_asymmnet as ga
from conftest import REFERENCE, manifest, rel_err


@pytest.mark.parametrize('hybrid', [False, True])
def test_reproduces_released_logits(released_params, reference_batch, reference_logits, hybrid):
    net = ga.get_model('asymmnet_large')
    assert ga.load_checkpoint(net, released_params) == 'released'
    if hybrid:
        net.hybridize(static_alloc=True, static_shape=True)
    out = net(mx.nd.array(reference_batch)).asnumpy()
    assert out.shape == (2, 1000)
    assert rel_err(out, reference_logits) < 1e-4


def test_structural_keys_are_the_released_layout():
    net = ga.get_model('asymmnet_large')
    expected = {k: tuple(s) for k, s in manifest('released_checkpoint_L1.0.manifest.json')['keys']}
    got = {k: p.shape for k, p in net._collect_params_with_prefix().items()}
    assert got == expected


COUNTS = list(csv.DictReader(open(os.path.join(REFERENCE, 'counts.csv'))))


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


@pytest.mark.parametrize('size', ['large', 'small'])
@pytest.mark.parametrize('multiplier', [1.0, 0.75])
def test_asymmrate_zero_is_gluoncv_mobilenetv3(size, multiplier):
    from gluoncv.model_zoo import get_model as gcv_get_model
    theirs = gcv_get_model('mobilenetv3_%s' % size, multiplier=multiplier) if multiplier != 1.0 \
        else gcv_get_model('mobilenetv3_%s' % size)
    ours = ga.get_model('mobilenetv3_%s' % size, multiplier=multiplier)
    assert ga.profile(ours) == ga.profile(ga.get_model('asymmnet_%s' % size, multiplier=multiplier, asymmrate=0))
    theirs.initialize()
    theirs(mx.nd.zeros((1, 3, 224, 224)))
    their_shapes = {k: p.shape for k, p in theirs._collect_params_with_prefix().items()}
    our_shapes = {k: p.shape for k, p in ours._collect_params_with_prefix().items()}
    assert our_shapes == their_shapes
    assert ga.profile(ours)['macs'] == ga.profile(theirs)['macs']


def test_mobilenetv3_outputs_equal_gluoncv_with_shared_weights(tmp_path):
    from gluoncv.model_zoo import get_model as gcv_get_model
    theirs = gcv_get_model('mobilenetv3_large')
    # Seeded, well-conditioned weights: a network that amplifies float32 rounding
    # (as N(0, 0.5) weights can) would measure conditioning, not equality.
    mx.random.seed(0)
    theirs.initialize(mx.init.Xavier(magnitude=2))
    x = mx.nd.random.uniform(-1, 1, (2, 3, 224, 224))
    theirs(x)
    for name, p in theirs.collect_params().items():
        if name.endswith(('running_var', 'gamma')):
            p.set_data(mx.nd.random.uniform(0.5, 1.5, p.shape))
        elif name.endswith(('running_mean', 'beta')):
            p.set_data(mx.nd.random.normal(0, 0.1, p.shape))
    path = str(tmp_path / 'gcv.params')
    theirs.save_parameters(path)
    ours = ga.get_model('mobilenetv3_large')
    ours.load_parameters(path)
    assert rel_err(ours(x).asnumpy(), theirs(x).asnumpy()) < 1e-5


@pytest.mark.parametrize('kwargs, words', [
    (dict(name='asymmnet_large', multiplier=0.35, asymmrate=2), ['features.', 'asymmrate 2', 'input 16']),
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
    net = ga.get_model('asymmnet_small', multiplier=0.5, shuffle_groups=2, classes=5)
    net.initialize()
    assert net(mx.nd.zeros((1, 3, 64, 64))).shape == (1, 5)


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
    assert rel_err(net(mx.nd.array(reference_batch)).asnumpy(), reference_logits) < 1e-4
