#!/usr/bin/env python
"""Evidence that the downstream models learn: a detector and a pose model on drawn data, through GluonCV's pieces.

Writes a drawn Pascal VOC dataset (filled shapes, their form and colour the
class: ``tests/gluoncv_data.py``) and a drawn COCO-keypoints dataset (stick
figures with coloured joints), a few hundred images each, and an AsymmNet-L
backbone file of random weights (the user's own file; nothing is
downloaded). Then trains, each in a child process through ``python -m
gluon_asymmnet.with_gluoncv --backbone-params FILE``, the tests' scripts
``tests/gluoncv_train_detection.py`` (GluonCV's VOCDetection, CenterNet or
YOLOv3 transforms and target generators, losses, VOC07MApMetric) and
``tests/gluoncv_train_pose.py`` (COCOKeyPoints, SimplePose transforms, L2 on
the target heatmaps, HeatmapAccuracy, COCO keypoint AP), evaluating before
training and after every epoch::

    python benchmarks/learn_downstream.py                      # both, the defaults below
    python benchmarks/learn_downstream.py --tasks pose --pose-epochs 4 --keep runs/learn

Prints the commands, one line per epoch, then whether the loss fell and how
far the metric rose (the CPU with them).
"""
import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, 'tests'))

from gluon_asymmnet.cpu import configure_omp_threads, cpu_description  # noqa: E402


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--tasks', default='detection,pose', help='comma-separated: detection, pose')
    p.add_argument('--detector', default='center_net_asymmnet_small_duc_voc',
                   help='a center_net_* or yolo3_* model (VOC)')
    p.add_argument('--pose-model', default='mobile_pose_asymmnet_large')
    p.add_argument('--images', type=int, default=256, help='training images of each dataset')
    p.add_argument('--val-images', type=int, default=32, help='validation images of each dataset')
    p.add_argument('--image-size', type=int, default=96, help='side of the drawn images')
    p.add_argument('--data-shape', type=int, default=96, help="the detector's input side")
    p.add_argument('--input-size', default='96,64', help="the pose model's input (height,width)")
    p.add_argument('--detection-epochs', type=int, default=10)
    p.add_argument('--pose-epochs', type=int, default=6)
    p.add_argument('--detection-lr', type=float, default=1e-3)
    p.add_argument('--pose-lr', type=float, default=1e-3)
    p.add_argument('--batch-size', type=int, default=8)
    p.add_argument('--min-gain', type=float, default=0.2,
                   help='how far the metric must rise above its value before training (absolute)')
    p.add_argument('--backbone-params', help="backbone file (default: the model's backbone with random weights, "
                                             "written here)")
    p.add_argument('--keep', help='write the data and logs here (default: a temporary folder, removed)')
    return p.parse_args()


def write_data(args, folder):
    from gluoncv_data import write_coco_keypoints, write_voc
    half = args.images // 2
    size = (args.image_size, args.image_size)
    write_voc(os.path.join(folder, 'voc'), splits=((2007, 'trainval', half), (2012, 'trainval', args.images - half),
                                                   (2007, 'test', args.val_images)), size=size, seed=1)
    write_coco_keypoints(os.path.join(folder, 'coco'), splits=(('train2017', args.images),
                                                               ('val2017', args.val_images)), size=size, seed=2)


def random_backbone(model, folder):
    """A parameter file of ``model``'s backbone with random weights: the user's own file, nothing downloaded."""
    import mxnet as mx
    import gluon_asymmnet as ga
    backbone = next(b for b in ('asymmnet_large', 'asymmnet_small', 'mobilenetv3_large', 'mobilenetv3_small')
                    if b in model)
    path = os.path.join(folder, '%s_random.params' % backbone)
    mx.random.seed(0)
    net = ga.get_model(backbone)
    net.initialize(mx.init.Xavier(magnitude=2.5))
    net(mx.nd.zeros((1, 3, 224, 224)))
    net.save_parameters(path)
    return path


def run(command, cwd):
    """Run one training; its per-epoch JSON lines (printed as they come) and its wall time."""
    print('$ ' + ' '.join(shlex.quote(c) for c in command), flush=True)
    tic = time.time()
    epochs = []
    with subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env=dict(os.environ, PYTHONPATH=ROOT, MXNET_HOME=os.path.join(cwd, 'mxnet_home'))) as proc:
        for line in proc.stdout:
            if line.startswith('{'):
                epochs.append(json.loads(line))
                print('  ' + line.strip(), flush=True)
        err = proc.stderr.read()
    if proc.returncode:
        sys.exit('training failed (exit status %d):\n%s' % (proc.returncode, err[-3000:]))
    return epochs, time.time() - tic


def verdict(name, epochs, metric, seconds, min_gain):
    losses = [e['loss'] for e in epochs if 'loss' in e]
    start, end = epochs[0][metric], epochs[-1][metric]
    fell, rose = losses[-1] < losses[0], end >= start + min_gain
    print('%s: loss %.4g (epoch 1) -> %.4g (epoch %d): %s; %s %.3f (before training) -> %.3f (best %.3f): %s; '
          '%.0f s' % (name, losses[0], losses[-1], len(losses), 'fell' if fell else 'did NOT fall', metric, start,
                      end, max(e[metric] for e in epochs), 'rose by %.2f or more' % min_gain if rose else
                      'did NOT rise by %.2f' % min_gain, seconds))
    return fell and rose


def main():
    args = parse_args()
    configure_omp_threads('learn_downstream.py')
    tasks = [t.strip() for t in args.tasks.split(',') if t.strip()]
    folder = args.keep or tempfile.mkdtemp(prefix='learn_downstream_')
    os.makedirs(folder, exist_ok=True)
    print('CPU: %s, OMP_NUM_THREADS %s' % (cpu_description(), os.environ.get('OMP_NUM_THREADS')), flush=True)
    write_data(args, folder)

    def wrapper(model):
        backbone = args.backbone_params or random_backbone(model, folder)
        return [sys.executable, '-m', 'gluon_asymmnet.with_gluoncv', '--backbone-params', backbone]
    results = []
    try:
        if 'detection' in tasks:
            epochs, seconds = run(wrapper(args.detector) + [
                os.path.join(ROOT, 'tests', 'gluoncv_train_detection.py'), '--model', args.detector,
                '--voc-root', os.path.join(folder, 'voc'), '--data-shape', str(args.data_shape),
                '--epochs', str(args.detection_epochs), '--batch-size', str(args.batch_size), '--eval-before']
                + ['--lr', str(args.detection_lr)], folder)
            results.append(verdict(args.detector, epochs, 'val_map', seconds, args.min_gain))
        if 'pose' in tasks:
            epochs, seconds = run(wrapper(args.pose_model) + [
                os.path.join(ROOT, 'tests', 'gluoncv_train_pose.py'), '--model', args.pose_model,
                '--data-dir', os.path.join(folder, 'coco'), '--input-size', args.input_size,
                '--epochs', str(args.pose_epochs), '--batch-size', str(args.batch_size), '--lr', str(args.pose_lr),
                '--eval-before'], folder)
            results.append(verdict(args.pose_model, epochs, 'val_heatmap_accuracy', seconds, args.min_gain))
            print('  (COCO keypoint AP: %.3f before training, %.3f after)'
                  % (epochs[0]['val_ap'], epochs[-1]['val_ap']))
    finally:
        if not args.keep:
            import shutil
            shutil.rmtree(folder, ignore_errors=True)
    print('learns: %s' % ('yes' if all(results) else 'NO'))
    return 0 if all(results) else 1


if __name__ == '__main__':
    sys.exit(main())
