"""MobileNetV2 is GluonCV's at every width; MobileNetV2-asymm is the authors' ``get_mobilenetv2_asymm``.

Every comparison uses the well-conditioned reference weights and checks that
scaling the first block's depthwise weights by 1.5 moves the compared logits
beyond the tolerance (``conftest.assert_same_logits``). Run with ``-s`` to see
the measured errors.
"""
import io
import os
import warnings
import zipfile

import mxnet as mx
import numpy as np
import pytest

import gluon_asymmnet as ga
from conftest import DATA, assert_same_logits, assert_sensitive, logit_tolerance, rel_err
from gluon_asymmnet import model_store as ms
from mobilenetv2_asymm_reference import AuthorsMobileNetV2Asymm
from reference_weights import network_reference_weights, reference_input
from test_store import server  # noqa: F401  (fixture: a loopback HTTP server)

# The first block's depthwise weights in GluonCV's and the authors' layouts.
THEIR_FIRST_BLOCK = 'features.3.out.0.weight'
SIZE = 64


def _their_file(theirs, x, folder, name):
    theirs.initialize()
    theirs(x)
    network_reference_weights(theirs)
    path = str(folder / name)
    theirs.save_parameters(path)
    return path


@pytest.fixture(scope='module', params=(1.0, 0.75, 0.5, 0.25, 1.4), ids=lambda m: 'x%g' % m)
def gluoncv_net(request, tmp_path_factory):
    """GluonCV's MobileNetV2 with the reference weights, saved in both forms its loader reads."""
    from gluoncv.model_zoo.mobilenet import get_mobilenet_v2
    multiplier = request.param
    x = mx.nd.array(reference_input((2, 3, SIZE, SIZE)))
    theirs = get_mobilenet_v2(multiplier)
    folder = tmp_path_factory.mktemp('gluoncv_v2')
    path = _their_file(theirs, x, folder, 'mobilenetv2_%g.params' % multiplier)
    legacy = str(folder / ('mobilenetv2_%g-legacy.params' % multiplier))
    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', 'save_params is deprecated')
        theirs.save_params(legacy)
    return multiplier, theirs, {'gluoncv-mobilenetv2': path, 'gluoncv-mobilenetv2-legacy': legacy}, x


@pytest.mark.parametrize('layout', ['gluoncv-mobilenetv2', 'gluoncv-mobilenetv2-legacy'])
def test_mobilenetv2_is_gluoncv_at_every_width(gluoncv_net, layout):
    multiplier, theirs, files, x = gluoncv_net
    ours = ga.get_model('mobilenetv2', multiplier=multiplier)
    assert ga.load_checkpoint(ours, files[layout]) == layout
    error, tolerance, sensitivity = assert_same_logits(ours, theirs, x, THEIR_FIRST_BLOCK)
    ours.hybridize()
    assert_same_logits(ours, theirs, x, THEIR_FIRST_BLOCK)
    assert ga.profile(ours) == ga.profile(theirs)
    print('\nmobilenetv2 x%g vs GluonCV (%s): logit error %.2e (tolerance %.2e), first-block weight x1.5 moves '
          "GluonCV's logits by %.3g" % (multiplier, layout, error, tolerance, sensitivity))


def test_gluoncv_names_are_mobilenetv2_at_their_width(gluoncv_net):
    multiplier, theirs, files, x = gluoncv_net
    if multiplier not in (1.0, 0.75, 0.5, 0.25):
        pytest.skip('GluonCV publishes no name for x%g' % multiplier)
    ours = ga.get_model('MobileNetV2_%s' % ('1.0' if multiplier == 1 else '%g' % multiplier))
    assert (type(ours), ours.multiplier, ours.asymmrate) == (ga.MobileNetV2, multiplier, 0)
    ga.load_checkpoint(ours, files['gluoncv-mobilenetv2'])
    assert_same_logits(ours, theirs, x, THEIR_FIRST_BLOCK)


def test_asymmrate_zero_is_mobilenetv2(gluoncv_net):
    multiplier, theirs, files, x = gluoncv_net
    ours = ga.get_model('mobilenetv2_asymm', multiplier=multiplier, asymmrate=0)
    assert ga.load_checkpoint(ours, files['gluoncv-mobilenetv2']) == 'gluoncv-mobilenetv2'
    assert_same_logits(ours, theirs, x, THEIR_FIRST_BLOCK)


def test_stand_in_is_the_authors_network():
    """The test-only stand-in reproduces the logits the authors' own code computed (pinned in tests/data)."""
    x = mx.nd.array(reference_input())
    stand_in = AuthorsMobileNetV2Asymm(1.0, 1)
    stand_in.initialize()
    stand_in(x)
    network_reference_weights(stand_in)
    pinned = np.load(os.path.join(DATA, 'authors_mobilenetv2_asymm_x1.0_r1.logits.npy'))
    tolerance = logit_tolerance(stand_in, x)
    assert rel_err(stand_in(x).asnumpy(), pinned) < tolerance
    assert_sensitive(stand_in, x, THEIR_FIRST_BLOCK, at_least=10 * tolerance)


@pytest.mark.parametrize('multiplier,asymmrate', [(1.0, 1), (1.0, 0), (1.0, 2), (0.75, 1), (0.5, 1), (0.35, 3),
                                                  (0.25, 1), (1.4, 1), (1.0, 5)])
def test_mobilenetv2_asymm_is_the_authors(multiplier, asymmrate, tmp_path):
    x = mx.nd.array(reference_input((2, 3, SIZE, SIZE)))
    theirs = AuthorsMobileNetV2Asymm(multiplier, asymmrate)
    path = _their_file(theirs, x, tmp_path, 'authors.params')
    ours = ga.get_model('mobilenetv2_asymm', multiplier=multiplier, asymmrate=asymmrate)
    assert ga.load_checkpoint(ours, path) == 'authors-mobilenetv2'
    error, tolerance, sensitivity = assert_same_logits(ours, theirs, x, THEIR_FIRST_BLOCK)
    ours.hybridize()
    assert_same_logits(ours, theirs, x, THEIR_FIRST_BLOCK)
    theirs.hybridize()
    assert_same_logits(ours, theirs, x, THEIR_FIRST_BLOCK)
    print('\nmobilenetv2_asymm x%g r%d vs the authors\': logit error %.2e (tolerance %.2e), sensitivity %.3g'
          % (multiplier, asymmrate, error, tolerance, sensitivity))


def test_authors_asymmrate_zero_file_loads_into_mobilenetv2(tmp_path):
    x = mx.nd.array(reference_input((2, 3, SIZE, SIZE)))
    theirs = AuthorsMobileNetV2Asymm(0.5, 0)
    path = _their_file(theirs, x, tmp_path, 'authors_r0.params')
    ours = ga.get_model('mobilenetv2', multiplier=0.5)
    assert ga.load_checkpoint(ours, path) == 'authors-mobilenetv2'
    assert_same_logits(ours, theirs, x, THEIR_FIRST_BLOCK)


def test_own_files_round_trip(tmp_path):
    x = mx.nd.array(reference_input((2, 3, SIZE, SIZE)))
    net = ga.get_model('mobilenetv2_asymm', multiplier=0.5)
    net.initialize()
    network_reference_weights(net)
    path = str(tmp_path / 'own.params')
    net.save_parameters(path)
    again = ga.get_model('mobilenetv2_asymm', multiplier=0.5)
    assert ga.load_checkpoint(again, path) == 'released'
    assert_same_logits(again, net, x)


# ---------------------------------------------------------------------------
# Refusals name the block and the numbers


@pytest.mark.parametrize('name,kwargs,message', [
    ('mobilenetv2_asymm', dict(asymmrate=6), r'features\.4 \(block 2 of mobilenetv2_asymm, multiplier 1\): cannot '
                                             r'expand input 16 to 96 channels with asymmrate 6'),
    ('mobilenetv2_asymm', dict(multiplier=0.5, asymmrate=7), r'features\.4 .*input 8 to 48 channels with asymmrate 7'),
    ('mobilenetv2_asymm', dict(asymmrate=-1), 'asymmrate must be an integer >= 0'),
    ('mobilenetv2_asymm', dict(asymmrate=1, shuffle_groups=3), r'features\.4 .*shuffle_groups=3 does not divide'),
    ('mobilenetv2', dict(multiplier=0.05), r'int\(16 \* 0\.05\) = 0 channels; it must be at least 1/16'),
    ('mobilenetv2', dict(asymmrate=1), 'mobilenetv2 takes no asymmrate; .*; mobilenetv2_asymm adds feature reuse'),
    ('mobilenetv2_0.5', dict(multiplier=1.0), r'mobilenetv2_0\.5 is mobilenetv2 with multiplier=0\.5'),
    ('mobilenetv2', dict(dropout=1.0), r'dropout must be in \[0, 1\)'),
])
def test_invalid_configurations_are_refused(name, kwargs, message):
    with pytest.raises(ValueError, match=message):
        ga.get_model(name, **kwargs)


def test_files_of_another_configuration_are_refused(tmp_path):
    x = mx.nd.array(reference_input((1, 3, 32, 32)))
    path = _their_file(AuthorsMobileNetV2Asymm(0.5, 1), x, tmp_path, 'r1.params')
    net = ga.get_model('mobilenetv2_asymm', multiplier=0.5, asymmrate=2)
    net.initialize()
    before = net.features[0].weight.data().asnumpy()
    with pytest.raises(ga.CheckpointError, match=r'r1\.params \(layout authors-mobilenetv2\): parameter '
                                                 r'features\.4\.expand\.0\.weight has shape \(40, 8, 1, 1\) in the '
                                                 r'file, the network expects \(32, 8, 1, 1\)'):
        ga.load_checkpoint(net, path)
    assert np.array_equal(net.features[0].weight.data().asnumpy(), before)
    with pytest.raises(ga.CheckpointError, match=r'layout gluoncv-mobilenetv2\): parameter features\.4\.out\.0\.weight '
                                                 r'has shape \(56, 1, 3, 3\) in the file, the network expects '
                                                 r'\(48, 8, 1, 1\), network parameter features\.4\.expand\.conv\.weight'):
        ga.load_checkpoint(ga.get_model('mobilenetv2', multiplier=0.5), path, layout='gluoncv-mobilenetv2')


# ---------------------------------------------------------------------------
# Counts: closed forms from the paper's table, not from the package's plan


def _closed_form(multiplier, asymmrate, size=224, classes=1000):
    """MACs, exact and paper-convention parameters of MobileNetV2(-asymm) from Table 2 of the MobileNetV2 paper."""
    def down(n):  # 3x3, pad 1, stride 2
        return (n - 1) // 2 + 1
    w = lambda c: int(c * multiplier)  # noqa: E731
    side = down(size)
    c_in = w(32)
    macs, params, paper = side * side * c_in * 27, 27 * c_in + 2 * c_in, 9 * c_in + 2 * c_in
    for t, c, n, s in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                       (6, 320, 1, 1)]:
        for i in range(n):
            r = asymmrate if t != 1 else 0
            expand = c_in * t - r * c_in if t != 1 else 0
            mid = c_in * t + r * c_in
            if expand:
                macs += side * side * c_in * expand
                params += c_in * expand + 2 * expand
                paper += c_in * expand + 2 * expand
            if s == 2 and i == 0:
                side = down(side)
            macs += side * side * (9 * mid + mid * w(c))
            params += 9 * mid + 2 * mid + mid * w(c) + 2 * w(c)
            paper += 3 * mid + 2 * mid + mid * w(c) + 2 * w(c)
            c_in = w(c)
    last = int(1280 * multiplier) if multiplier > 1 else 1280
    macs += side * side * c_in * last + last * classes
    params += c_in * last + 2 * last + last * classes
    paper += c_in * last + 2 * last + last * classes
    return dict(macs=macs, params=params, params_paper=paper)


@pytest.mark.parametrize('multiplier', [1.0, 0.75, 0.5, 0.35, 0.25, 1.4])
@pytest.mark.parametrize('asymmrate', [0, 1, 2])
def test_profile_matches_the_closed_form(multiplier, asymmrate):
    name = 'mobilenetv2_asymm' if asymmrate else 'mobilenetv2'
    kwargs = dict(asymmrate=asymmrate) if asymmrate else {}
    assert ga.profile(ga.get_model(name, multiplier=multiplier, **kwargs)) == _closed_form(multiplier, asymmrate)


def test_profile_is_the_papers_mobilenetv2():
    """MobileNetV2 1.0: 300M MAdds at 224 (the paper's Table 4), 3,504,872 parameters less the classifier bias."""
    counts = ga.profile(ga.get_model('mobilenetv2'))
    assert counts['macs'] == 300774272 and abs(counts['macs'] / 300e6 - 1) < 0.003
    assert counts['params'] == 3504872 - 1000


# ---------------------------------------------------------------------------
# The model store


def test_published_mobilenetv2_entries():
    from gluoncv.model_zoo import model_store as gcv
    for width, top in [('1.0', (72.04, 90.57)), ('0.75', (69.36, 88.50)), ('0.5', (64.43, 85.31)),
                       ('0.25', (51.76, 74.89))]:
        name = 'mobilenetv2_' + width
        e = ms.find_entry('mobilenetv2', dict(multiplier=float(width), asymmrate=0, shuffle_groups=0, classes=1000))
        assert (e.hash, e.hash_type, e.layout) == (gcv._model_sha1[name], 'sha1', None)
        assert e.file_name == '%s-%s.params' % (name, gcv.short_hash(name))
        assert e.url == gcv._url_format.format(repo_url=gcv.apache_repo_url, file_name=e.file_name[:-7])
        assert e.archive == 'zip' and (e.top1, e.top5) == top


@pytest.mark.parametrize('layout', ['gluoncv-mobilenetv2', 'gluoncv-mobilenetv2-legacy'])
def test_pretrained_downloads_gluoncv_zip(server, tmp_path, monkeypatch, layout):  # noqa: F811
    """``pretrained=True`` as for GluonCV's files: a zip from the (loopback) server, hash-checked, either layout."""
    from gluoncv.model_zoo.mobilenet import get_mobilenet_v2
    monkeypatch.delenv('MXNET_HOME', raising=False)
    x = mx.nd.array(reference_input((2, 3, SIZE, SIZE)))
    theirs = get_mobilenet_v2(0.25, classes=10)
    path = _their_file(theirs, x, tmp_path, 'theirs.params')
    if layout.endswith('legacy'):
        with warnings.catch_warnings():
            warnings.filterwarnings('ignore', 'save_params is deprecated')
            theirs.save_params(path)
    data = open(path, 'rb').read()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, 'w') as zf:
        zf.writestr('mobilenetv2_0.25-test.params', data)
    server.files['/gluon/models/mobilenetv2_0.25-test.zip'] = buf.getvalue()
    entry = ms.register(dict(name='mobilenetv2-test', model='mobilenetv2', kwargs=dict(multiplier=0.25, classes=10),
                             file_name='mobilenetv2_0.25-test.params', hash=ms.file_hash(path), hash_type='sha1',
                             url=server.url('/gluon/models/mobilenetv2_0.25-test.zip'), archive='zip', layout=None))
    try:
        root = str(tmp_path / 'store')
        ours = ga.get_model('mobilenetv2_0.25', classes=10, pretrained=True, root=root)
        assert_same_logits(ours, theirs, x, THEIR_FIRST_BLOCK)
        again = ga.get_model('mobilenetv2', multiplier=0.25, classes=10, pretrained=entry.hash[:8], root=root)
        assert_same_logits(again, theirs, x, THEIR_FIRST_BLOCK)
        assert server.hits == {'/gluon/models/mobilenetv2_0.25-test.zip': 1}
    finally:
        ms.unregister(entry.name)


# ---------------------------------------------------------------------------
# Training on the CPU with oneDNN on


@pytest.mark.parametrize('name,multiplier,asymmrate,shuffle', [
    ('mobilenetv2', 1.0, 0, 0), ('mobilenetv2_asymm', 1.0, 1, 0), ('mobilenetv2_asymm', 0.75, 2, 2),
    ('mobilenetv2_asymm', 0.35, 1, 0)])
def test_hybridized_training_with_onednn_lowers_the_loss(name, multiplier, asymmrate, shuffle):
    from test_train_cpu import train_losses
    assert os.environ.get('MXNET_MKLDNN_ENABLED', '1') != '0' and mx.runtime.Features().is_enabled('MKLDNN')
    kwargs = dict(asymmrate=asymmrate, shuffle_groups=shuffle) if asymmrate else {}
    net = ga.get_model(name, multiplier=multiplier, classes=10, **kwargs)
    losses = train_losses(net, size=128)
    assert np.isfinite(losses).all() and losses[-1] < 0.9 * losses[0], losses
    # The training graph: ReLU6 as clip to 6, the feature-reuse concat on MXNet's kernel (dim=-3).
    train_graph = net._cached_graph[1].tojson()
    assert '"a_max": "6.0"' in train_graph
    assert ('"dim": "-3"' in train_graph) == bool(asymmrate) and '"dim": "1"' not in train_graph


def test_imperative_training_lowers_the_loss():
    from test_train_cpu import train_losses
    losses = train_losses(ga.get_model('mobilenetv2_asymm', multiplier=0.5, classes=10), size=96, hybridize=False)
    assert np.isfinite(losses).all() and losses[-1] < 0.9 * losses[0], losses


def test_train_imagenet_model_flag(tmp_path):
    """``train_imagenet.py --model mobilenetv2_asymm`` on the bundled digits, residual blocks zero-initialised."""
    from gluon_asymmnet.training import build_network, parse_args, train
    argv = ['--model', 'mobilenetv2_asymm', '--width-scale', '0.25', '--asymmrate', '2', '--dropout', '0',
            '--num-epochs', '1', '--batch-size', '64', '-j', '0', '--save-dir', str(tmp_path), '--log-interval', '0']
    cfg = parse_args(argv + ['--last-gamma'])
    net = build_network(cfg, [mx.cpu()])
    assert (net.asymmrate, net.multiplier) == (2, 0.25)
    residual = [b for b in net.blocks if b.residual]
    assert len(residual) == 10 and all(b.conv2.bn.gamma.data().abs().sum().asscalar() == 0 for b in residual)
    out = train(parse_args(argv))
    assert out['num_update'] > 0 and 0 < out['history'][0]['top1'] <= 1
    # --asymmrate (default 1) is ignored by the models without feature reuse, as by mobilenetv3_*.
    plain = build_network(parse_args(['--model', 'mobilenetv2', '--width-scale', '0.25', '--save-dir', str(tmp_path)]),
                          [mx.cpu()])
    assert (type(plain), plain.asymmrate) == (ga.MobileNetV2, 0)


# ---------------------------------------------------------------------------
# Deployment: export, inference backends, feature maps

pytestmark = pytest.mark.filterwarnings('ignore:Cannot decide type for the following arguments')


@pytest.fixture(scope='module')
def deployed(tmp_path_factory):
    """MobileNetV2-asymm x0.5 with the reference weights, its input, imperative logits and their tolerance."""
    from conftest import randomized
    net = randomized('mobilenetv2_asymm', dict(multiplier=0.5, classes=10))
    x = mx.nd.array(reference_input((2, 3, SIZE, SIZE)))
    tolerance = logit_tolerance(net, x)
    assert_sensitive(net, x, at_least=10 * max(tolerance, 1e-4))
    return net, x, net(x).asnumpy(), tolerance, tmp_path_factory.mktemp('deploy')


def test_export_symbol_onnx_and_back(deployed):
    import onnxruntime
    from gluon_asymmnet.export import TOLERANCE, compare_exported, export, main
    net, x, expected, tolerance, folder = deployed
    prefix = str(folder / 'mnv2a')
    files = export(net, prefix, SIZE)
    block = mx.gluon.SymbolBlock.imports(files['symbol'], ['data'], files['params'])
    assert rel_err(block(x).asnumpy(), expected) < tolerance
    sym, args, auxs = mx.model.load_checkpoint(prefix, 0)
    mod = mx.mod.Module(sym, data_names=['data'], label_names=None, context=mx.cpu())
    mod.bind(data_shapes=[('data', x.shape)], for_training=False)
    mod.set_params(args, auxs)
    mod.forward(mx.io.DataBatch([x]), is_train=False)
    assert rel_err(mod.get_outputs()[0].asnumpy(), expected) < tolerance
    session = onnxruntime.InferenceSession(files['onnx'], providers=['CPUExecutionProvider'])
    assert rel_err(session.run(None, {'data': x.asnumpy()})[0], expected) < max(tolerance, TOLERANCE['onnx'])
    own = export(net, str(folder / 'own'), SIZE, formats='symbol', deploy=False)  # loads back into Gluon
    fresh = ga.get_model('mobilenetv2_asymm', multiplier=0.5, classes=10)
    assert ga.load_checkpoint(fresh, own['params']) == 'export'
    assert np.array_equal(fresh(x).asnumpy(), expected)
    uint8 = export(net, str(folder / 'uint8'), SIZE, preprocess=True)
    errors = compare_exported(net, uint8, SIZE, preprocess=True)
    assert all(errors[k] < TOLERANCE[k] for k in ('symbol', 'onnx')), errors
    net.save_parameters(str(folder / 'mnv2a.params'))
    assert main(['--model', 'mobilenetv2_asymm', '--multiplier', '0.5', '--asymmrate', '1', '--classes', '10',
                 '--params', str(folder / 'mnv2a.params'), '--prefix', str(folder / 'cli'),
                 '--input-size', str(SIZE)]) == 0
    with pytest.raises(SystemExit):
        main(['--model', 'mobilenetv2', '--asymmrate', '1', '--params', 'x', '--prefix', str(folder / 'no')])


def _ops(sym):
    import json
    return [n['op'] for n in json.loads(sym.tojson())['nodes']]


def test_inference_graphs_fuse_relu6(deployed):
    """ReLU6 is one clip per activation in the rewritten graph, and oneDNN fuses every one into its convolution."""
    from gluon_asymmnet.inference import inference_symbol, symbol_block
    net, x, expected, tolerance, _ = deployed
    sym = inference_symbol(net, input_shape=x.shape)
    relu6 = sum(1 for b in net.features if isinstance(b, ga.block.Act)) + sum(
        (b.expand is not None) + 1 for b in net.blocks)
    assert _ops(sym).count('clip') == relu6 == 2 + 16 + 17
    assert _ops(sym).count('Concat') == 16 and 'relu' not in _ops(sym)
    block = symbol_block(sym, net)
    assert np.array_equal(block(x).asnumpy(), expected)
    block.hybridize(static_alloc=True, static_shape=True)
    block.optimize_for(x, backend='MKLDNN', static_alloc=True, static_shape=True)
    fused = _ops(block._cached_graph[1])
    assert 'clip' not in fused and 'BatchNorm' not in fused and fused.count('_sg_mkldnn_conv') == 53
    assert rel_err(block(x).asnumpy(), expected) < tolerance


def test_every_inference_backend(deployed):
    """FP32 backends give the network's logits; INT8 ones run quantized end to end, ReLU6 fused.

    (INT8 accuracy needs trained weights: ``benchmarks/bench_mobilenetv2_asymm.py --int8``; untrained
    weights are either saturated or, like the reference weights, amplify any rounding.)
    """
    import json
    from gluon_asymmnet.inference import BACKENDS, build_predictor
    net, x, expected, tolerance, folder = deployed
    calib = reference_input((16, 3, SIZE, SIZE), seed=2)
    for backend in BACKENDS:
        predictor = build_predictor(backend, net, 2, SIZE, calib=calib, workdir=str(folder / backend))
        out = predictor(x.asnumpy())
        if predictor.precision == 'fp32':
            assert rel_err(out, expected) < max(tolerance, 1e-4), backend
        else:
            assert out.shape == expected.shape and np.isfinite(out).all()
            assert predictor.info['fp32_layers'] == ['features.23', 'output.0']
    nodes = json.load(open(str(folder / 'mxnet-int8' / 'mxnet-int8-b2-64x64' / 'int8-symbol.json')))['nodes']
    ops = [n['op'] for n in nodes]
    assert 'clip' not in ops and ops.count('_contrib_quantized_concat') == 16
    assert ops.count('_contrib_quantize_v2') == 2 and ops.count('_sg_mkldnn_conv') == 53


def test_feature_maps_are_gluoncvs(gluoncv_net):
    """Strides 4, 8, 16, 32 of MobileNetV2 are GluonCV's own intermediate outputs."""
    multiplier, theirs, files, x = gluoncv_net
    ours = ga.get_model('mobilenetv2', multiplier=multiplier)
    ga.load_checkpoint(ours, files['gluoncv-mobilenetv2'])
    extractor = ga.FeatureExtractor(ours)
    assert extractor.indices == (5, 8, 15, 22)
    y = x
    reference = []
    for layer in theirs.features:
        y = layer(y)
        reference.append(y.asnumpy())
    for got, i in zip(extractor(x), extractor.indices):
        assert rel_err(got.asnumpy(), reference[i]) < 1e-5


def test_comparison_pairs_equal_madds():
    """``benchmarks/bench_mobilenetv2_asymm.py`` pairs each MobileNetV2 with the asymmetrical network of its MAdds."""
    from benchmarks.bench_mobilenetv2_asymm import macs, width_pair
    for width in (0.5, 1.0):
        assert width_pair(width, 1, 32, 0.02) == width
        gap = macs('mobilenetv2_asymm', width, 1, 32)['macs'] / macs('mobilenetv2', width, 0, 32)['macs'] - 1
        assert abs(gap) < 0.02
