"""The downstream models: GluonCV's own pose and detection models over the package's backbones.

The MobileNet variants are GluonCV's: files GluonCV's constructors save load
through ``load_checkpoint`` and give GluonCV's outputs (well-conditioned
weights, comparisons shown to be sensitive). Every model takes the keywords
GluonCV's scripts pass, hybridizes, saves and reloads; ``pretrained_base``
loads backbone weights from the store, a file, or the process-wide file, and
refuses with one line where nothing is published. Inputs are 128x96 (the
pose scripts' 256x192 halved): every stride divides it.
"""
import warnings

import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd
from mxnet.gluon import nn

import gluon_asymmnet as ga
from conftest import assert_sensitive, logit_tolerance, rel_err
from gluon_asymmnet.downstream import BackboneError, backbone_params, set_backbone_params
from gluon_asymmnet.features import layer_strides
from reference_weights import network_reference_weights, reference_input

H, W = 128, 96


@pytest.fixture(scope='module')
def x():
    return mx.nd.array(reference_input((2, 3, H, W)))


def _ready(net, x, forward=None):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        net.initialize()
    (forward or net)(x)
    network_reference_weights(net)
    return net


def _saved(theirs, tmp_path, name):
    path = str(tmp_path / (name + '.params'))
    theirs.save_parameters(path)
    return path


def _raw_center_net(net):
    def forward(x):
        y = net.base_network(x)
        return [head(y) for head in net.heads]
    return forward


def _assert_same(ours, theirs, x, forward_ours=None, forward_theirs=None, key=None):
    """Every output equal to the tolerance, and the comparison sensitive beyond it."""
    fo, ft = forward_ours or ours, forward_theirs or theirs
    a, b = fo(x), ft(x)
    a = a if isinstance(a, (list, tuple)) else [a]
    b = b if isinstance(b, (list, tuple)) else [b]
    tolerance = max(1e-4, 5 * max(logit_tolerance(lambda v, i=i: _as_list(ft(v))[i], x) for i in range(len(b))))
    errors = [rel_err(p.asnumpy(), q.asnumpy()) for p, q in zip(a, b)]
    assert max(errors) < tolerance, (errors, tolerance)
    assert_sensitive(theirs, x, key, at_least=10 * tolerance, forward=ft)
    return max(errors), tolerance


def _as_list(out):
    return out if isinstance(out, (list, tuple)) else [out]


@pytest.mark.parametrize('arch', ['large', 'small'])
def test_mobile_pose_mobilenetv3_loads_gluoncvs_file_and_gives_its_heatmaps(arch, x, tmp_path):
    from gluoncv.model_zoo import get_model as gluoncv_model
    theirs = _ready(gluoncv_model('mobile_pose_mobilenetv3_%s' % arch, pretrained_base=False), x)
    path = _saved(theirs, tmp_path, 'pose')
    ours = ga.get_model('mobile_pose_mobilenetv3_%s' % arch)
    assert ga.load_checkpoint(ours, path) == 'released'
    error, tolerance = _assert_same(ours, theirs, x, key='features.0.3.conv1.conv.weight')
    assert ours(x).shape == (2, 17, H // 4, W // 4)
    print('\nmobile_pose_mobilenetv3_%s vs GluonCV: %.2e (tolerance %.2e)' % (arch, error, tolerance))


def test_mobile_pose_mobilenetv2_loads_gluoncvs_file(x, tmp_path):
    from gluoncv.model_zoo import get_model as gluoncv_model
    theirs = _ready(gluoncv_model('mobile_pose_mobilenetv2_1.0', pretrained_base=False), x)
    path = _saved(theirs, tmp_path, 'pose_v2')
    ours = ga.get_model('mobile_pose_mobilenetv2_1.0')
    assert ga.load_checkpoint(ours, path) == 'gluoncv-mobilenetv2'
    _assert_same(ours, theirs, x, key='features.0.4.out.3.weight')


@pytest.mark.parametrize('arch', ['large', 'small'])
def test_center_net_mobilenetv3_loads_gluoncvs_file_and_gives_its_detections(arch, x, tmp_path):
    from gluoncv.model_zoo import get_model as gluoncv_model
    name = 'center_net_mobilenetv3_%s_duc_voc' % arch
    theirs = _ready(gluoncv_model(name, pretrained_base=False), x)
    path = _saved(theirs, tmp_path, 'center')
    ours = ga.get_model(name, pretrained_base=False)
    assert ga.load_checkpoint(ours, path) == 'released'
    assert (ours.classes, ours.topk, ours.scale) == (theirs.classes, theirs.topk, theirs.scale)
    _assert_same(ours, theirs, x, _raw_center_net(ours), _raw_center_net(theirs),
                 key='base_network.feature.3.conv1.conv.weight')
    # The decoded detections (GluonCV's post-processing): same boxes, scores and classes.
    for a, b in zip(ours(x), theirs(x)):
        np.testing.assert_allclose(a.asnumpy(), b.asnumpy(), rtol=1e-3, atol=1e-3)


def test_yolo3_mobilenetv3_is_gluoncvs_yolov3_over_gluoncvs_mobilenetv3(x, tmp_path):
    """GluonCV has no yolo3_mobilenetv3: its YOLOV3 over its MobileNetV3 split at strides 8, 16, 32 is the model."""
    from gluoncv.data import VOCDetection
    from gluoncv.model_zoo import get_model as gluoncv_model
    from gluoncv.model_zoo.yolo.yolo3 import YOLOV3
    base = gluoncv_model('mobilenetv3_large')
    strides = [s for s, _ in layer_strides(base)]
    ends = [max(i for i, s in enumerate(strides) if s == t) + 1 for t in (8, 16, 32)]
    stages = [base.features[:ends[0]], base.features[ends[0]:ends[1]], base.features[ends[1]:ends[2]]]
    theirs = _ready(YOLOV3(stages, [512, 256, 128], [[10, 13, 16, 30, 33, 23], [30, 61, 62, 45, 59, 119],
                                                      [116, 90, 156, 198, 373, 326]], [8, 16, 32],
                           VOCDetection.CLASSES), x)
    path = _saved(theirs, tmp_path, 'yolo')
    ours = ga.get_model('yolo3_mobilenetv3_large_voc', pretrained_base=False)
    ours.initialize()
    assert ga.load_checkpoint(ours, path) == 'released'
    assert ours.classes == theirs.classes
    # Each output layer's predictions in inference mode, read by hooks from GluonCV's own forward pass (random
    # weights give no detection above NMS's threshold to compare).
    forward = lambda net: lambda v: mx.nd.array(_gluon_raw(net, v))  # noqa: E731
    _assert_same(ours, theirs, x, forward(ours), forward(theirs), key='stages.0.3.conv1.conv.weight')


@pytest.mark.parametrize('name', ['center_net_asymmnet_small_duc_coco', 'yolo3_asymmnet_small_voc',
                                  'mobile_pose_asymmnet_large'])
def test_models_hybridize_save_and_reload(name, x, tmp_path):
    kwargs = {} if name.startswith('mobile_pose') else dict(pretrained_base=False)
    net = _ready(ga.get_model(name, **kwargs), x)
    net.hybridize()
    before = _as_list(net(x))
    path = str(tmp_path / 'net.params')
    net.save_parameters(path)
    again = ga.get_model(name, pretrained=path)
    after = _as_list(again(x))
    for a, b in zip(after, before):
        np.testing.assert_array_equal(a.asnumpy(), b.asnumpy())
    # GluonCV's own loader (its scripts' --resume, eval --pretrained) reads the same file.
    third = ga.get_model(name, **kwargs)
    third.load_parameters(path)
    np.testing.assert_array_equal(_as_list(third(x))[-1].asnumpy(), before[-1].asnumpy())


@pytest.mark.parametrize('name', ['yolo3_asymmnet_large_voc', 'center_net_asymmnet_small_duc_voc',
                                  'mobile_pose_asymmnet_large'])
def test_sync_batchnorm_is_injected_and_names_stay(name):
    plain = ga.get_model(name, pretrained_base=False)
    synced = ga.get_model(name, pretrained_base=False, norm_layer=mx.gluon.contrib.nn.SyncBatchNorm,
                          norm_kwargs={'num_devices': 1})
    assert list(plain._collect_params_with_prefix()) == list(synced._collect_params_with_prefix())
    kinds = {type(b).__name__ for b in _leaves(synced)}
    assert 'SyncBatchNorm' in kinds and 'BatchNorm' in {type(b).__name__ for b in _leaves(plain)}
    block = synced.stages[0][3] if name.startswith('yolo3') else None
    if block is not None:
        assert type(block.conv1.bn).__name__ == 'SyncBatchNorm'


def _leaves(block):
    yield block
    for child in block._children.values():
        yield from _leaves(child)


def test_gluoncv_script_keywords(x):
    """What train_simple_pose.py, train_center_net.py and train_yolo3.py pass, and what they call."""
    pose = ga.get_model('mobile_pose_asymmnet_large', ctx=[mx.cpu()], num_joints=14, pretrained=False,
                        pretrained_base=False, pretrained_ctx=[mx.cpu()])
    pose.initialize(mx.init.MSRAPrelu())
    pose.cast('float32')
    pose.hybridize(static_alloc=True, static_shape=True)
    with autograd.record():
        loss = mx.gluon.loss.L2Loss()(pose(x), mx.nd.zeros((2, 14, H // 4, W // 4)))
    loss.backward()
    assert np.isfinite(loss.asnumpy()).all()

    center = ga.get_model('center_net_asymmnet_large_duc_voc', pretrained_base=False, norm_layer=nn.BatchNorm)
    assert list(center.collect_params('.*bias').keys()) and center.num_classes == 20
    center.flip_test = True
    center.hybridize()
    ids, scores, boxes = center(x)
    assert boxes.shape == (2, 40, 4)
    center.set_nms(-1, -1)
    center.reset_class(['person'], reuse_weights=['person'])
    assert center.classes == ['person'] and center.heads[0][-1].weight.shape[0] == 1

    yolo = ga.get_model('yolo3_asymmnet_large_voc', pretrained_base=False)
    yolo.initialize()
    assert list(yolo.collect_params('.*beta|.*gamma|.*bias').keys())
    yolo.set_nms(nms_thresh=0.45, nms_topk=400)
    yolo.hybridize()
    ids, scores, boxes = yolo(x)
    assert boxes.shape[-1] == 4
    yolo.reset_class(['person', 'dog'])
    assert yolo.classes == ['person', 'dog'] and yolo.num_class == 2


def test_refuses_unknown_keywords():
    with pytest.raises(ValueError, match='norm_layer must be a normalization layer class'):
        ga.get_model('yolo3_asymmnet_large_voc', pretrained_base=False, norm_layer='syncbn')
    with pytest.raises(ValueError, match='num_joints must be a positive integer'):
        ga.get_model('mobile_pose_asymmnet_small', num_joints=0)
    with pytest.raises(ValueError, match='mobile_pose_mobilenetv3_large takes no asymmrate; it takes num_joints=17'):
        ga.get_model('mobile_pose_mobilenetv3_large', asymmrate=1)
    with pytest.raises(ValueError, match='takes no classes'):
        ga.get_model('yolo3_asymmnet_large_voc', classes=['a'])
    assert 'mobile_pose_asymmnet_large' not in ga.get_model_list()
    assert 'yolo3_asymmnet_small_coco' in ga.get_model_list('detection')
    assert 'mobile_pose_mobilenetv2_1.0' in ga.get_model_list(None)


# --- backbone weights ----------------------------------------------------------------------------------------------

def _backbone_file(tmp_path, name='asymmnet_large', seed=3, **kwargs):
    net = ga.get_model(name, **kwargs)
    net.initialize()
    net(mx.nd.zeros((1, 3, 64, 64)))
    network_reference_weights(net, seed)
    path = str(tmp_path / ('%s.params' % name))
    net.save_parameters(path)
    return net, path


def _same_backbone(net, backbone, prefix):
    theirs = backbone._collect_params_with_prefix()
    ours = net._collect_params_with_prefix()
    key = 'features.3.conv1.conv.weight'
    np.testing.assert_array_equal(ours[prefix + '3.conv1.conv.weight'].data().asnumpy(), theirs[key].data().asnumpy())


def test_pretrained_base_path_and_the_process_wide_file(tmp_path):
    backbone, path = _backbone_file(tmp_path)
    pose = ga.get_model('mobile_pose_asymmnet_large', pretrained_base=path)
    _same_backbone(pose, backbone, 'features.0.')
    with backbone_params(path):
        yolo = ga.get_model('yolo3_asymmnet_large_voc', pretrained_base=True)
    _same_backbone(yolo, backbone, 'stages.0.')
    with pytest.raises(BackboneError, match='no such file'):
        set_backbone_params(str(tmp_path / 'missing.params'))
    # A file of another backbone: one line naming the key that does not fit.
    with backbone_params(path), pytest.raises(BackboneError, match=r'backbone asymmnet_small: .*asymmnet_large'
                                                                   r'\.params.*(missing|shape|unexpected)'):
        ga.get_model('center_net_asymmnet_small_duc_voc')


def test_pretrained_base_takes_a_gluoncv_file(tmp_path):
    """GluonCV's own MobileNetV3 file, classifier and all: everything but the classifier lands in the backbone."""
    from gluoncv.model_zoo import get_model as gluoncv_model
    theirs = gluoncv_model('mobilenetv3_small')
    theirs.initialize()
    theirs(mx.nd.zeros((1, 3, 64, 64)))
    network_reference_weights(theirs, seed=5)
    path = str(tmp_path / 'mobilenetv3_small.params')
    theirs.save_parameters(path)
    pose = ga.get_model('mobile_pose_mobilenetv3_small', pretrained_base=path)
    _same_backbone(pose, theirs, 'features.0.')


def test_pretrained_base_true_loads_the_store_file_without_downloading(tmp_path, monkeypatch):
    """The released AsymmNet-L entry, its file already in $MXNET_HOME/models (hash-checked, never fetched)."""
    from gluon_asymmnet import model_store as ms
    entry = ms.find_entry('asymmnet_large', dict(multiplier=1.0, asymmrate=1, shuffle_groups=0, classes=1000))
    backbone, path = _backbone_file(tmp_path)
    monkeypatch.setattr(ms, 'file_hash', lambda p, hash_type='sha1': entry.hash)
    monkeypatch.setattr(ms.requests, 'get', lambda *a, **k: pytest.fail('no download'))
    home = tmp_path / 'home'
    (home / 'models').mkdir(parents=True)
    (home / 'models' / entry.file_name).write_bytes(open(path, 'rb').read())
    monkeypatch.setenv('MXNET_HOME', str(home))
    net = ga.get_model('center_net_asymmnet_large_duc_voc')
    _same_backbone(net, backbone, 'base_network.feature.')


@pytest.mark.parametrize('name, kwargs', [('yolo3_asymmnet_small_voc', {}),
                                          ('center_net_asymmnet_large_duc_coco', dict(multiplier=0.75)),
                                          ('mobile_pose_asymmnet_large', dict(pretrained_base=True, asymmrate=2))])
def test_pretrained_base_refused_where_nothing_is_published(name, kwargs):
    with pytest.raises(BackboneError) as err:
        ga.get_model(name, **kwargs)
    message = str(err.value)
    assert '\n' not in message and 'pretrained_base=FILE' in message and 'set_backbone_params' in message


# --- export ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize('name', ['mobile_pose_asymmnet_large', 'center_net_asymmnet_small_duc_coco',
                                  'yolo3_asymmnet_large_voc'])
def test_export_symbol_and_onnx_at_a_non_square_input(name, x, tmp_path):
    """Backbone in its deployment form, files checked against Gluon (symbol in MXNet, ONNX in onnxruntime)."""
    import onnxruntime
    from gluon_asymmnet.downstream.export import export_downstream, inference_network
    from gluon_asymmnet.export_record import check_files, read_record
    net = _ready(ga.get_model(name, pretrained_base=False), x)
    batch = 2 if name.startswith('center_net') else None  # a fixed batch: the ONNX file and the record say so
    prefix = str(tmp_path / 'out')
    files = export_downstream(net, prefix, input_size=(H, W), batch_size=batch)
    assert max(files['errors'].values()) < files['tolerance'] <= 1e-3
    record = read_record(prefix)
    check_files(prefix, record, {k: files[k] for k in ('symbol', 'params', 'onnx')})
    assert (record['batch_size'], record['deploy'], tuple(record['input_size'])) == (batch, True, (H, W))
    with open(files['symbol']) as f:
        assert 'deploy_block' in f.read()  # the backbone's deployment form (its per-part convolutions)
    # The exported output is the network's: heatmaps, CenterNet's heads, YOLO's predictions (checked below).
    reference = inference_network(net, (H, W), deploy=False)
    session = onnxruntime.InferenceSession(files['onnx'], providers=['CPUExecutionProvider'])
    got = session.run(None, {session.get_inputs()[0].name: x.asnumpy()})[0]
    expected = _gluon_raw(net, x)
    assert got.shape == expected.shape
    assert rel_err(reference(x).asnumpy(), expected) < 1e-5
    assert rel_err(got, expected) < files['tolerance']
    assert_sensitive(net, x, _first_block(net), at_least=10 * files['tolerance'],
                     forward=lambda v: reference(v))


def _first_block(net):
    return next(k for k in net._collect_params_with_prefix() if k.endswith('3.conv1.conv.weight'))


def _gluon_raw(net, x):
    """The raw outputs, read from the model's own forward pass (GluonCV's code): hooks on its layers."""
    if hasattr(net, 'upsampling') and not hasattr(net, 'heads'):
        return net(x).asnumpy()
    if hasattr(net, 'heads'):
        y = net.base_network(x)
        heatmap, wh, reg = [head(y) for head in net.heads]
        return mx.nd.concat(mx.nd.sigmoid(heatmap), wh, reg, dim=1).asnumpy()
    seen = []
    hooks = [o.prediction.register_forward_hook(lambda block, inputs, out: seen.append(out.reshape((0, -1))))
             for o in net.yolo_outputs]
    try:
        net(x)
    finally:
        for h in hooks:
            h.detach()
    return mx.nd.concat(*seen, dim=1).asnumpy()


def test_export_refuses_sizes_off_the_stride(x):
    from gluon_asymmnet.downstream.export import inference_network
    net = _ready(ga.get_model('mobile_pose_mobilenetv3_small'), x)
    with pytest.raises(ValueError, match='multiples of 32'):
        inference_network(net, (100, 96))
