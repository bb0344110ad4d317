"""The fused-operator library: built from source, equal to MXNet's operators, used by mxnet-fused."""
import json
import os
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd

import gluon_asymmnet as ga
from gluon_asymmnet import fastops
from gluon_asymmnet.inference import BackendError, build_predictor, inference_symbol
from test_eval import demo_model  # noqa: F401  (session fixture: a model trained on the demo digits)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope='module', autouse=True)
def ops():
    return fastops.load()


def _reference_hard_swish(x):
    return x * mx.nd.hard_sigmoid(x, alpha=1.0 / 6, beta=0.5)


def _input_grads(f, inputs, dy):
    """Gradients of ``f(*inputs)`` with respect to each input, for output gradient ``dy``."""
    inputs = [v.copy() for v in inputs]
    for v in inputs:
        v.attach_grad()
    with autograd.record():
        y = f(*inputs)
    y.backward(dy)
    return [v.grad.asnumpy() for v in inputs]


# Below and above the size where the kernels go parallel; values around the clamps at +-3.
@pytest.mark.parametrize('shape', [(1, 8, 3, 5), (2, 40, 28, 28), (4, 240, 14, 14)])
def test_hard_swish_is_bit_identical_to_mxnet_and_has_its_gradient(shape):
    rng = np.random.RandomState(sum(shape))
    x = mx.nd.array(np.concatenate([rng.uniform(-5, 5, int(np.prod(shape)) - 4), [-3.0, 3.0, 0.0, -0.0]])
                    .astype(np.float32).reshape(shape))
    assert np.array_equal(mx.nd.ga_hard_swish(x).asnumpy(), _reference_hard_swish(x).asnumpy())
    dy = mx.nd.array(rng.normal(0, 1, shape))
    grads = [_input_grads(f, [x], dy)[0] for f in (mx.nd.ga_hard_swish, _reference_hard_swish)]
    inside = np.abs(x.asnumpy()) != 3  # the reference's subgradient at the kinks is its own choice
    np.testing.assert_allclose(grads[0][inside], grads[1][inside], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize('shape', [(1, 16, 7, 7), (8, 120, 28, 28)])
def test_channel_scale_is_bit_identical_to_broadcast_mul_and_has_its_gradient(shape):
    rng = np.random.RandomState(shape[1])
    x = mx.nd.array(rng.normal(0, 1, shape))
    s = mx.nd.array(rng.uniform(0, 1, shape[:2] + (1, 1)))
    assert np.array_equal(mx.nd.ga_channel_scale(x, s).asnumpy(), mx.nd.broadcast_mul(x, s).asnumpy())
    dy = mx.nd.array(rng.normal(0, 1, shape))
    grads = [_input_grads(f, [x, s], dy) for f in (mx.nd.ga_channel_scale, mx.nd.broadcast_mul)]
    np.testing.assert_array_equal(grads[0][0], grads[1][0])
    np.testing.assert_allclose(grads[0][1], grads[1][1], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('shape', [(1, 8, 3, 5), (4, 240, 14, 14)])
def test_global_avg_pool_matches_pooling_to_float32_rounding_and_has_its_gradient(shape):
    rng = np.random.RandomState(shape[1])
    x = mx.nd.array(rng.normal(1, 1, shape))

    def pool(v):
        return mx.nd.Pooling(v, kernel=(1, 1), global_pool=True, pool_type='avg')
    found, expected = mx.nd.ga_global_avg_pool(x).asnumpy(), pool(x).asnumpy()
    assert found.shape == shape[:2] + (1, 1)
    np.testing.assert_allclose(found, expected, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(found, x.asnumpy().astype(np.float64).mean(axis=(2, 3), keepdims=True), rtol=1e-7)
    dy = mx.nd.array(rng.normal(0, 1, shape[:2] + (1, 1)))
    grads = [_input_grads(f, [x], dy)[0] for f in (mx.nd.ga_global_avg_pool, pool)]
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-6)


def test_bad_input_is_refused_by_name():
    with pytest.raises(mx.base.MXNetError, match='ga_channel_scale: needs x'):
        mx.nd.ga_channel_scale(mx.nd.ones((2, 4, 3, 3)), mx.nd.ones((2, 5, 1, 1))).wait_to_read()
    with pytest.raises(mx.base.MXNetError, match='ga_hard_swish: float32 inputs only'):
        mx.nd.ga_hard_swish(mx.nd.ones((2, 3), dtype='float16')).wait_to_read()
    with pytest.raises(mx.base.MXNetError, match='ga_global_avg_pool: needs x .N, C, H, W., got 3 dimensions'):
        mx.nd.ga_global_avg_pool(mx.nd.ones((2, 3, 4))).wait_to_read()


def test_build_caches_by_source_and_reports_a_missing_compiler(tmp_path, monkeypatch):
    monkeypatch.setenv('MXNET_HOME', str(tmp_path / 'home'))
    path = fastops.build()
    assert path == fastops.library_path() and path.startswith(str(tmp_path / 'home' / 'gluon_asymmnet'))
    assert os.access(path, os.X_OK) and os.listdir(os.path.dirname(path)) == [os.path.basename(path)]
    stamp = os.stat(path).st_mtime_ns
    assert fastops.build() == path and os.stat(path).st_mtime_ns == stamp  # not rebuilt
    with pytest.raises(fastops.FastOpsError, match="no C\\+\\+ compiler 'no-such-c\\+\\+'"):
        fastops.build(str(tmp_path / 'other'), compiler='no-such-c++')


def test_build_failure_shows_the_compiler_output(tmp_path, monkeypatch):
    bad = tmp_path / 'fastops.cc'
    bad.write_text('#include "mxnet/lib_api.h"\nthis is not C++;\n')
    monkeypatch.setattr(fastops, 'SOURCE', str(bad))
    with pytest.raises(fastops.FastOpsError, match='building .*fastops.cc failed .*\n.*\n(.|\n)*error'):
        fastops.build(str(tmp_path / 'cache'))
    assert os.listdir(tmp_path / 'cache') == []  # no half-written library left behind


def test_command_line_builds_and_prints_the_path(tmp_path):
    env = dict(os.environ, MXNET_HOME=str(tmp_path), PYTHONPATH=ROOT)
    done = subprocess.run([sys.executable, '-m', 'gluon_asymmnet.fastops'], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True)
    assert done.returncode == 0, done.stderr
    assert os.path.isfile(done.stdout.strip()) and done.stdout.strip().startswith(str(tmp_path))
    env['CXX'] = 'no-such-c++'
    env['MXNET_HOME'] = str(tmp_path / 'fresh')
    done = subprocess.run([sys.executable, '-m', 'gluon_asymmnet.fastops'], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True)
    assert done.returncode == 1 and 'no C++ compiler' in done.stderr and 'Traceback' not in done.stderr


def _ops(sym):
    return [n['op'] for n in json.loads(sym.tojson())['nodes']]


@pytest.mark.parametrize('name,kwargs', [
    ('asymmnet_large', dict(multiplier=0.5)),
    ('asymmnet_small', dict(multiplier=0.75, asymmrate=2, shuffle_groups=2)),
    ('mobilenetv3_small', dict(multiplier=0.5)),
])
@pytest.mark.parametrize('batch', [1, 2])
def test_fast_inference_symbol_matches_the_network(name, kwargs, batch):
    from conftest import assert_sensitive, randomized
    net = randomized(name, dict(kwargs, classes=10))
    plain = inference_symbol(net, input_shape=(batch, 3, 64, 96))
    fast = inference_symbol(net, input_shape=(batch, 3, 64, 96), fast_ops=True)
    hard_swish = _ops(plain).count('elemwise_mul')
    se = _ops(plain).count('broadcast_mul')
    assert hard_swish > 0 and se > 0
    assert _ops(fast).count('ga_hard_swish') == hard_swish and _ops(fast).count('ga_channel_scale') == se
    assert 'elemwise_mul' not in _ops(fast) and 'broadcast_mul' not in _ops(fast)

    def layout_resets(sym):  # backend.ops.hard_swish's reshape to the same shape
        return sum(1 for n in json.loads(sym.tojson())['nodes']
                   if n['op'] == 'Reshape' and n['attrs']['shape'] == '(0, 0, 0, 0)')
    assert layout_resets(plain) > 0 and layout_resets(fast) == 0
    # the SE gates keep their hard_sigmoid; the hard swishes lose theirs
    assert _ops(fast).count('hard_sigmoid') == _ops(plain).count('hard_sigmoid') - hard_swish
    # global pooling of plain-layout input (after the fast operators), the head's included
    pools = _ops(fast).count('ga_global_avg_pool')
    assert pools >= 1 and pools + _ops(fast).count('Pooling') == _ops(plain).count('Pooling')
    x = mx.nd.array(np.random.RandomState(1).uniform(-1, 1, (batch, 3, 64, 96)))
    assert_sensitive(net, x)  # the comparisons below (2e-6, exact) can fail
    block = mx.gluon.SymbolBlock(fast, mx.sym.var('data', dtype='float32'), params=net.collect_params())
    block.hybridize(static_alloc=True, static_shape=True)
    found, expected = block(x).asnumpy(), net(x).asnumpy()
    assert np.abs(found - expected).max() <= 2e-6 * np.abs(expected).max()
    # without the pooling operator (summation order) the rest is bit-identical
    no_pool = json.loads(fast.tojson())
    for node in no_pool['nodes']:
        if node['op'] == 'ga_global_avg_pool':
            node['op'], node['attrs'] = 'Pooling', {'global_pool': 'True', 'kernel': '(1, 1)', 'pool_type': 'avg'}
    block = mx.gluon.SymbolBlock(mx.sym.load_json(json.dumps(no_pool)), mx.sym.var('data', dtype='float32'),
                                 params=net.collect_params())
    np.testing.assert_array_equal(block(x).asnumpy(), expected)


def test_fused_backend_uses_the_library_and_falls_back_with_a_warning(monkeypatch):
    from conftest import assert_sensitive, randomized
    net = randomized('asymmnet_small', dict(multiplier=0.35, classes=10))
    x = np.random.RandomState(2).uniform(-1, 1, (2, 3, 32, 32)).astype(np.float32)
    expected = net(mx.nd.array(x)).asnumpy()
    assert_sensitive(net, mx.nd.array(x))  # the comparisons below (1e-5) can fail
    fast = build_predictor('mxnet-fused', net, 2, 32)
    plain = build_predictor('mxnet-fused', net, 2, 32, fast_ops=False)
    assert fast.info['fast_ops'] is True and plain.info['fast_ops'] is False
    for p in (fast, plain):
        assert np.abs(p(x) - expected).max() <= 1e-5 * np.abs(expected).max()

    def broken(*args, **kwargs):
        raise fastops.FastOpsError('no C++ compiler here')
    monkeypatch.setattr(fastops, 'load', broken)
    with pytest.warns(UserWarning, match='fastops unavailable.*no C\\+\\+ compiler here'):
        fallback = build_predictor('mxnet-fused', net, 2, 32)
    assert fallback.info['fast_ops'] is False and 'no C++ compiler here' in fallback.info['fast_ops_error']
    assert np.abs(fallback(x) - expected).max() <= 1e-5 * np.abs(expected).max()
    with pytest.raises(BackendError, match='no C\\+\\+ compiler here'):
        build_predictor('mxnet-fused', net, 2, 32, fast_ops=True)


def test_library_serves_every_model_of_the_zoo():
    for name in [n for n in ga.get_model_list() if not n.startswith('mobilenetv2')]:  # V2: no hard swish, no SE
        net = ga.get_model(name, multiplier=0.35 if 'large' in name else 0.5, classes=10)
        ops = _ops(inference_symbol(net, input_shape=(1, 3, 32, 32), fast_ops=True))
        assert {'ga_hard_swish', 'ga_channel_scale', 'ga_global_avg_pool'} <= set(ops), name


def _load_bench(monkeypatch):
    import importlib.util
    monkeypatch.setenv('MXNET_ENGINE_TYPE', os.environ.get('MXNET_ENGINE_TYPE', 'NaiveEngine'))
    spec = importlib.util.spec_from_file_location('bench_fastops', os.path.join(ROOT, 'benchmarks',
                                                                                'bench_fastops.py'))
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


def _table_rows(table):
    return [[c.strip() for c in line.strip('|').split('|')] for line in table.splitlines()[2:]]


def test_benchmark_tables_compare_each_measure(monkeypatch, tmp_path):
    from conftest import randomized
    bench = _load_bench(monkeypatch)
    rows = _table_rows(bench.operator_table(rounds=1))
    assert [r[0] for r in rows] == ['hard swish', 'SE rescale', 'global average pooling']
    assert all(float(r[1]) > 0 and float(r[2]) > 0 and r[3].endswith('x') for r in rows)
    net = randomized('asymmnet_small', dict(multiplier=0.35, classes=10))
    rows = _table_rows(bench.graph_table(net, rounds=1, input_size=32, batches=(1, 2)))
    threads = sorted({1, bench.physical_cores()})
    assert [(int(r[0]), int(r[1])) for r in rows] == [(b, t) for b in (1, 2) for t in threads]
    assert all(float(r[2]) > 0 and float(r[3]) > 0 for r in rows)
    params = str(tmp_path / 'net.params')
    net.save_parameters(params)
    totals, calls = bench.onednn_breakdown(params, 1, model='asymmnet_small', input_size=32,
                                           kwargs=dict(multiplier=0.35, classes=10))
    assert totals and all(ms >= 0 for ms in totals.values())
    convs = []
    net.apply(lambda block: convs.append(block) if isinstance(block, mx.gluon.nn.Conv2D) else None)
    assert sum(n for (kind, _), n in calls.items() if kind == 'convolution') == len(convs)  # all in oneDNN


def test_benchmark_int8_weight_table(monkeypatch, tmp_path, demo_model):  # noqa: F811
    bench = _load_bench(monkeypatch)
    net = ga.get_model(demo_model['model'], **demo_model['kwargs'])
    ga.load_checkpoint(net, demo_model['params'])
    rows = _table_rows(bench.int8_weight_table(net, str(tmp_path)))
    assert [r[0] for r in rows] == ['8-bit', '7-bit']
    for r in rows:
        assert 0 < float(r[1].rstrip(' %')) <= 100 and r[2].endswith('points')
