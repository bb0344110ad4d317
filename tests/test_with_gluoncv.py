"""GluonCV's own pieces over the package's models: ``python -m gluon_asymmnet.with_gluoncv`` and
``register_with_gluoncv``.

The trainings run the tests' own scripts (tests/gluoncv_train_pose.py,
tests/gluoncv_train_detection.py: GluonCV's datasets, transforms, target
generators, losses and metrics) through the command line, on drawn data in
GluonCV's layouts (tests/gluoncv_data.py), with a backbone file of the test's
own. GluonCV's metrics are checked to compute on that data: exact predictions
score 1, wrong ones less.
"""
import json
import math
import os
import subprocess
import sys
import textwrap

import mxnet as mx
import numpy as np
import pytest

from gluoncv_data import write_coco_keypoints, write_voc

import gluon_asymmnet as ga
from gluon_asymmnet.with_gluoncv import main, register_with_gluoncv

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.join(ROOT, 'tests')
PROGRAM = 'python -m gluon_asymmnet.with_gluoncv'


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    """Drawn VOC and COCO-keypoint data, and a backbone file of our own (AsymmNet-L, random weights)."""
    root = tmp_path_factory.mktemp('gluoncv_data')
    voc = write_voc(str(root / 'voc'))
    coco = write_coco_keypoints(str(root / 'coco'))
    net = ga.get_model('asymmnet_large')
    net.initialize(mx.init.Xavier(magnitude=2.5))
    net(mx.nd.zeros((1, 3, 224, 224)))
    backbone = str(root / 'my_asymmnet_large.params')
    net.save_parameters(backbone)
    return {'root': root, 'voc': voc, 'coco': coco, 'backbone': backbone}


@pytest.fixture
def gluoncv_zoo():
    """GluonCV's model table, the backbone-file setting and sys.argv/sys.path, restored after the test."""
    from gluoncv.model_zoo import model_zoo
    from gluon_asymmnet.downstream import set_backbone_params
    from gluon_asymmnet.downstream.backbone import current_backbone_params
    saved = (dict(model_zoo._models), current_backbone_params(), list(sys.argv), list(sys.path))
    yield model_zoo
    model_zoo._models.clear()
    model_zoo._models.update(saved[0])
    set_backbone_params(saved[1])
    sys.argv[:], sys.path[:] = saved[2], saved[3]


def _stem_weight(path):
    """The backbone file's first convolution (3 input channels): what must reappear in a model built on it."""
    params = mx.nd.load(path)
    return next(v.asnumpy() for v in params.values() if v.ndim == 4 and v.shape[1] == 3)


def _holds(params_file, weight):
    return any(v.shape == weight.shape and np.array_equal(v.asnumpy(), weight)
               for v in mx.nd.load(params_file).values())


def _train(backbone, script, args, cwd):
    # MXNET_HOME: an empty model store, so nothing but the given file can be the backbone.
    done = subprocess.run([sys.executable, '-m', 'gluon_asymmnet.with_gluoncv', '--backbone-params', backbone,
                           os.path.join(TESTS, script)] + args, cwd=str(cwd), capture_output=True, text=True,
                          timeout=600, env=dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1',
                                                MXNET_HOME=str(cwd / 'mxnet_home')))
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith('{')]


def test_a_pose_model_trains_an_epoch_through_the_wrapper_on_its_users_backbone(data, tmp_path):
    built = str(tmp_path / 'built.params')
    epochs = _train(data['backbone'], 'gluoncv_train_pose.py', [
        '--model', 'mobile_pose_asymmnet_large', '--data-dir', str(data['root'] / 'coco'), '--input-size', '96,64',
        '--epochs', '1', '--save-built', built], tmp_path)
    # --backbone-params reached the script's pretrained_base=True.
    assert _holds(built, _stem_weight(data['backbone']))
    (epoch,) = epochs
    assert math.isfinite(epoch['loss']) and epoch['loss'] > 0
    assert 0 <= epoch['val_heatmap_accuracy'] <= 1 and 0 <= epoch['val_ap'] <= 1


@pytest.mark.parametrize('model', ['yolo3_asymmnet_large_voc', 'center_net_asymmnet_large_duc_voc'])
def test_a_detection_model_trains_an_epoch_through_the_wrapper_on_its_users_backbone(model, data, tmp_path):
    built = str(tmp_path / 'built.params')
    epochs = _train(data['backbone'], 'gluoncv_train_detection.py', [
        '--model', model, '--voc-root', str(data['root'] / 'voc'), '--data-shape', '96',
        '--epochs', '1', '--save-built', built], tmp_path)
    assert _holds(built, _stem_weight(data['backbone']))
    (epoch,) = epochs
    assert math.isfinite(epoch['loss']) and epoch['loss'] > 0
    assert 0 <= epoch['val_map'] <= 1


def test_registering_puts_every_model_in_gluoncvs_zoo(data, gluoncv_zoo, capsys):
    import gluoncv
    names = register_with_gluoncv()
    assert set(ga.get_model_list(None)) <= set(names) and 'mobilenetv2_1.0' in names
    assert set(names) <= set(gluoncv.model_zoo.get_model_list())
    assert isinstance(gluoncv.model_zoo.get_model('asymmnet_large'), ga.AsymmNet)
    pose = gluoncv.model_zoo.get_model('mobile_pose_mobilenetv3_large')
    assert type(pose).__module__.startswith('gluon_asymmnet.')
    # A backbone file: pretrained_base=True loads it, pretrained_base=False does not, and says so.
    register_with_gluoncv(data['backbone'])
    stem = _stem_weight(data['backbone'])
    net = gluoncv.model_zoo.get_model('mobile_pose_asymmnet_large', pretrained_base=True)
    assert any(np.array_equal(p.data().asnumpy(), stem) for p in net.features.collect_params().values()
               if p.shape == stem.shape)
    capsys.readouterr()
    gluoncv.model_zoo.get_model('mobile_pose_asymmnet_large', pretrained_base=False)
    assert 'pretrained_base=False' in capsys.readouterr().err


def test_importing_the_package_registers_nothing():
    probe = textwrap.dedent('''
        import gluon_asymmnet, gluoncv
        register = gluon_asymmnet.register_with_gluoncv
        before = 'mobile_pose_asymmnet_large' in gluoncv.model_zoo.get_model_list()
        register()
        print(before, 'mobile_pose_asymmnet_large' in gluoncv.model_zoo.get_model_list())
    ''')
    done = subprocess.run([sys.executable, '-c', probe], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=ROOT))
    assert done.stdout.split() == ['False', 'True'], done.stderr[-2000:]


def _script(tmp_path, body, name='probe.py'):
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return str(path)


def _one_error_line(capsys):
    err = [line for line in capsys.readouterr().err.splitlines() if 'OpenMP' not in line]
    assert len(err) == 1, err
    return err[0]


def test_the_script_runs_as_main_with_its_arguments_and_exit_status(gluoncv_zoo, tmp_path, capsys):
    script = _script(tmp_path, '''
        import json, sys
        import gluoncv
        print(json.dumps([__name__, sys.argv, sys.path[0],
                          'yolo3_asymmnet_large_voc' in gluoncv.model_zoo.get_model_list()]))
        sys.exit(3)
    ''')
    # Options after the script are the script's, the wrapper's own included.
    assert main([script, '--backbone-params', 'x', '-h']) == 3
    name, argv, path0, registered = json.loads(capsys.readouterr().out)
    assert (name, argv, path0, registered) == ('__main__', [script, '--backbone-params', 'x', '-h'],
                                               str(tmp_path), True)


@pytest.mark.parametrize('case', ['no script', 'missing script', 'missing backbone file'])
def test_bad_command_lines_are_refused_in_one_line(case, tmp_path, capsys):
    script = _script(tmp_path, 'raise SystemExit("must not run")\n')
    argv, named = {'no script': ([], 'no script given'),
                   'missing script': ([str(tmp_path / 'nope.py')], 'nope.py: no such file'),
                   'missing backbone file': (['--backbone-params', str(tmp_path / 'nope.params'), script],
                                             'nope.params: no such file')}[case]
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    line = _one_error_line(capsys)
    assert line.startswith(PROGRAM + ': error: ') and named in line


def test_a_model_the_package_refuses_ends_the_script_in_one_line(data, gluoncv_zoo, tmp_path, capsys):
    bad_option = _script(tmp_path, '''
        from gluoncv.model_zoo import get_model
        get_model('yolo3_asymmnet_large_voc', pretrained_base=False, anchors=3)
    ''', 'bad_option.py')
    with pytest.raises(SystemExit) as stop:
        main([bad_option])
    assert stop.value.code == 2
    line = _one_error_line(capsys)
    assert 'bad_option.py' in line and "get_model('yolo3_asymmnet_large_voc')" in line and 'anchors' in line
    # A backbone file that is not one: named, in one line.
    garbage = tmp_path / 'hand_edited.params'
    garbage.write_bytes(b'not a parameter file' * 10)
    builds = _script(tmp_path, '''
        from gluoncv.model_zoo import get_model
        get_model('mobile_pose_asymmnet_large', pretrained_base=True)
    ''', 'builds.py')
    with pytest.raises(SystemExit) as stop:
        main(['--backbone-params', str(garbage), builds])
    assert stop.value.code == 2 and 'hand_edited.params' in _one_error_line(capsys)
    # The script's own errors stay the script's (a traceback, as without the wrapper).
    own = _script(tmp_path, 'raise ValueError("the script\'s own")\n', 'own.py')
    with pytest.raises(ValueError, match="the script's own"):
        main([own])


def test_gluoncvs_metrics_compute_on_the_drawn_data(data):
    from gluoncv import data as gdata
    from gluoncv.data import mscoco
    from gluoncv.data.transforms.presets.simple_pose import SimplePoseDefaultTrainTransform
    from gluoncv.utils.metrics import HeatmapAccuracy
    from gluoncv.utils.metrics.coco_keypoints import COCOKeyPointsMetric
    from gluoncv.utils.metrics.voc_detection import VOC07MApMetric

    # VOC07 mAP: the ground truth as detections scores 1; boxes moved by their width score 0.
    val = gdata.VOCDetection(root=str(data['root'] / 'voc'), splits=[(2007, 'test')])
    labels = [val[i][1] for i in range(len(val))]
    assert [[val.classes[int(c)] for c in label[:, 4]] for label in labels] == \
        [[name for name, _ in objects] for _, objects in data['voc'][(2007, 'test')]]

    def voc_map(shift):
        metric = VOC07MApMetric(iou_thresh=0.5, class_names=val.classes)
        for label in labels:
            boxes = label[:, :4] + np.array([1, 0, 1, 0]) * shift * (label[:, 2:3] - label[:, 0:1])
            metric.update(mx.nd.array(boxes[None]), mx.nd.array(label[None, :, 4:5]),
                          mx.nd.ones((1, len(label), 1)), mx.nd.array(label[None, :, :4]),
                          mx.nd.array(label[None, :, 4:5]), mx.nd.array(label[None, :, 5:6]))
        return metric.get()[1][-1]
    assert voc_map(0) == pytest.approx(1.0) and voc_map(1.1) == 0

    # HeatmapAccuracy: the target heatmaps score 1; heatmaps shifted by 3 cells score less.
    coco_val = mscoco.keypoints.COCOKeyPoints(str(data['root'] / 'coco'), splits=('person_keypoints_val2017',))
    targets = SimplePoseDefaultTrainTransform(
        num_joints=17, joint_pairs=coco_val.joint_pairs, image_size=(96, 64), heatmap_size=(24, 16),
        scale_factor=0, rotation_factor=0, random_flip=False)
    heatmaps = mx.nd.array(np.stack([targets(*coco_val[i])[1] for i in range(len(coco_val))]))

    def heatmap_accuracy(pred):
        metric = HeatmapAccuracy()
        metric.update([heatmaps], [pred])
        return metric.get()[1]
    assert heatmap_accuracy(heatmaps) == pytest.approx(1.0)
    assert heatmap_accuracy(mx.nd.array(np.roll(heatmaps.asnumpy(), 3, axis=3))) < 0.5

    # COCO keypoint AP: the annotated keypoints score 1; keypoints 8 pixels off score less.
    def keypoint_ap(offset):
        metric = COCOKeyPointsMetric(coco_val, str(data['root'] / 'kp'), use_time=False, cleanup=True)
        for image_id, points in data['coco']['val2017']:
            metric.update(mx.nd.array(points[None] + offset), mx.nd.ones((1, 17, 1)), mx.nd.ones((1,)),
                          mx.nd.array([image_id]))
        return metric.get()[1]
    assert keypoint_ap(0) == pytest.approx(1.0) and keypoint_ap(8) < 0.5
