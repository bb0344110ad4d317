#!/usr/bin/env python
"""GluonCV's own pose and detection scripts, unmodified, on AsymmNet-L through the wrapper on drawn data.

The wrapper is ``python -m gluon_asymmnet.with_gluoncv``.

Give it the folder that holds GluonCV's scripts (``train_simple_pose.py``,
``validate_simple_pose.py``, ``train_center_net.py``, ``eval_center_net.py``,
``train_yolo3.py``, ``eval_yolo.py``, ``demo_yolo.py``, ``demo_center_net.py``:
from gluon-cv's ``scripts/pose/simple_pose``, ``scripts/detection/center_net``
and ``scripts/detection/yolo``, ``validate.py`` and ``demo.py`` of the pose
folder renamed ``validate_simple_pose.py``, ``demo_simple_pose.py``). In a
temporary ``HOME`` it writes drawn Pascal VOC data (``~/.mxnet/datasets/voc``,
where GluonCV's detection scripts read it), drawn COCO keypoints and a
backbone file of its own (AsymmNet-L, random weights), then runs each script
on the CPU for one small epoch, or on what the training wrote, and prints
each command with its exit status, time and last result line::

    python benchmarks/try_gluoncv_scripts.py ~/gluon-cv-scripts [--keep DIR]

Exit status 1 when a command failed.
"""
import argparse
import glob
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, 'tests'))

from gluon_asymmnet.cpu import configure_omp_threads, cpu_description  # noqa: E402

POSE = ['--model', 'mobile_pose_asymmnet_large', '--num-gpus', '0', '--num-joints', '17', '--data-dir',
        '~/.mxnet/datasets/coco', '--batch-size', '4', '-j', '0', '--input-size', '128,96']
DETECTION = ['--gpus', '', '--data-shape', '128', '--batch-size', '4', '-j', '0']


def commands(backbone, image):
    """(name, the wrapper's options, script, its arguments); a ``*`` in an argument: a file a training wrote."""
    with_backbone = ['--backbone-params', backbone]
    return [
        ('pose, train', with_backbone, 'train_simple_pose.py',
         POSE + ['--num-epochs', '1', '--use-pretrained-base', '--mode', 'hybrid']),
        # --score-threshold -1: GluonCV's COCOKeyPointsMetric cannot write a barely trained model's scores.
        ('pose, validate', [], 'validate_simple_pose.py',
         POSE + ['--params-file', 'params/mobile_pose_asymmnet_large-0.params', '--score-threshold', '-1']),
        ('CenterNet, train', with_backbone, 'train_center_net.py',
         ['--network', 'asymmnet_large_duc', '--epochs', '1'] + DETECTION),
        ('CenterNet, eval', with_backbone, 'eval_center_net.py',
         ['--network', 'asymmnet_large_duc', '--pretrained', 'center_net_asymmnet_large_duc_voc_0000_*.params']
         + DETECTION),
        ('CenterNet, demo', [], 'demo_center_net.py',
         ['--network', 'center_net_asymmnet_large_duc_voc', '--images', image,
          '--pretrained', 'center_net_asymmnet_large_duc_voc_0000_*.params']),
        ('YOLOv3, train', with_backbone, 'train_yolo3.py',
         ['--network', 'asymmnet_large', '--epochs', '1', '--no-random-shape'] + DETECTION),
        ('YOLOv3, eval', with_backbone, 'eval_yolo.py',
         ['--network', 'asymmnet_large', '--pretrained', 'yolo3_asymmnet_large_voc_0000_*.params'] + DETECTION),
        ('YOLOv3, demo', [], 'demo_yolo.py',
         ['--network', 'yolo3_asymmnet_large_voc', '--images', image,
          '--pretrained', 'yolo3_asymmnet_large_voc_0000_*.params']),
    ]


def prepare(home):
    """Drawn VOC and COCO keypoints under ``home``'s ``~/.mxnet/datasets``, and the backbone file."""
    import mxnet as mx
    import gluon_asymmnet as ga
    from gluoncv_data import write_coco_keypoints, write_voc
    datasets = os.path.join(home, '.mxnet', 'datasets')
    write_voc(os.path.join(datasets, 'voc'), splits=((2007, 'trainval', 8), (2012, 'trainval', 8), (2007, 'test', 4)),
              size=(128, 128))
    write_coco_keypoints(os.path.join(datasets, 'coco'), splits=(('train2017', 8), ('val2017', 4)), size=(128, 128))
    net = ga.get_model('asymmnet_large')
    net.initialize(mx.init.Xavier(magnitude=2.5))
    net(mx.nd.zeros((1, 3, 224, 224)))
    backbone = os.path.join(home, 'my_asymmnet_large.params')
    net.save_parameters(backbone)
    return backbone, os.path.join(datasets, 'voc', 'VOC2007', 'JPEGImages', '2007_000001.jpg')


def last_result(output):
    keep = [line.strip() for line in output.splitlines()
            if any(k in line for k in ('loss=', 'Training cost', 'mAP', 'AP', 'Traceback', 'error'))]
    return keep[-1][:160] if keep else ''


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('scripts', help="the folder with GluonCV's scripts")
    p.add_argument('--keep', help='work in this folder and keep it (default: a temporary folder, removed)')
    args = p.parse_args()
    scripts = os.path.abspath(os.path.expanduser(args.scripts))
    configure_omp_threads('try_gluoncv_scripts.py')
    print('CPU: %s, OMP_NUM_THREADS %s' % (cpu_description(), os.environ.get('OMP_NUM_THREADS')), flush=True)
    home = os.path.abspath(args.keep) if args.keep else tempfile.mkdtemp(prefix='gluoncv_scripts_')
    run_dir = os.path.join(home, 'run')
    os.makedirs(run_dir, exist_ok=True)
    backbone, image = prepare(home)
    env = dict(os.environ, HOME=home, PYTHONPATH=ROOT, MPLBACKEND='Agg', MXNET_HOME=os.path.join(home, '.mxnet'))
    failed = 0
    for name, options, script, arguments in commands(backbone, image):
        # A file the training wrote, named by the epoch and its mAP.
        arguments = [(glob.glob(os.path.join(run_dir, a)) or [a])[0] if '*' in a else a for a in arguments]
        command = [sys.executable, '-m', 'gluon_asymmnet.with_gluoncv'] + options + [os.path.join(scripts, script)]
        command += arguments
        tic = time.time()
        done = subprocess.run(command, cwd=run_dir, env=env, capture_output=True, text=True)
        failed += done.returncode != 0
        print('%-17s exit %d, %4.0f s  %s\n    $ %s' % (name, done.returncode, time.time() - tic,
                                                     last_result(done.stdout + done.stderr),
                                                     ' '.join(shlex.quote(c) for c in command)), flush=True)
    print('%d of %d commands failed' % (failed, len(commands(backbone, image))))
    if not args.keep:
        shutil.rmtree(home, ignore_errors=True)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
