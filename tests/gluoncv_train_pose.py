"""Train and evaluate a pose model with GluonCV's own pieces, as GluonCV's pose scripts do.

Run through ``python -m gluon_asymmnet.with_gluoncv`` (tests/test_with_gluoncv.py,
benchmarks/learn_downstream.py): the model comes from GluonCV's
``get_model``, the data from GluonCV's ``COCOKeyPoints`` and its
SimplePose train/val transforms (Gaussian target heatmaps), the loss is
Gluon's L2 loss weighted by the joints' visibility, the metrics are GluonCV's
``HeatmapAccuracy`` and COCO keypoint AP (``COCOKeyPointsMetric`` over
``get_final_preds``). One JSON line per epoch on stdout (epoch 0: before
training).
"""
import argparse
import contextlib
import json
import math
import os
import warnings

import mxnet as mx
from mxnet import autograd, gluon
from gluoncv.data import mscoco
from gluoncv.data.transforms.pose import get_final_preds
from gluoncv.data.transforms.presets.simple_pose import (SimplePoseDefaultTrainTransform,
                                                         SimplePoseDefaultValTransform)
from gluoncv.model_zoo import get_model
from gluoncv.utils.metrics import HeatmapAccuracy
from gluoncv.utils.metrics.coco_keypoints import COCOKeyPointsMetric

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--model', required=True)
    p.add_argument('--data-dir', required=True, help='COCO-keypoints layout (train2017, val2017)')
    p.add_argument('--input-size', default='96,64', help='height,width')
    p.add_argument('--epochs', type=int, default=1)
    p.add_argument('--batch-size', type=int, default=4)
    p.add_argument('--lr', type=float, default=1e-3)
    p.add_argument('--eval-before', action='store_true', help='evaluate before training too (epoch 0)')
    p.add_argument('--save-built', help='save the parameters as built (before training) to this file')
    return p.parse_args()


def loaders(args, size, train, val):
    heatmap = [s // 4 for s in size]

    def targets(random):
        return SimplePoseDefaultTrainTransform(
            num_joints=train.num_joints, joint_pairs=train.joint_pairs, image_size=size, heatmap_size=heatmap,
            sigma=2, scale_factor=0.3 if random else 0, rotation_factor=30 if random else 0, mean=MEAN, std=STD,
            random_flip=random)
    fit = gluon.data.DataLoader(train.transform(targets(True)), args.batch_size, shuffle=True, last_batch='discard')
    # The validation images with target heatmaps (HeatmapAccuracy) and as GluonCV's validation reads them (AP).
    val_heatmaps = gluon.data.DataLoader(val.transform(targets(False)), args.batch_size, last_batch='keep')
    val_points = gluon.data.DataLoader(val.transform(SimplePoseDefaultValTransform(
        num_joints=val.num_joints, joint_pairs=val.joint_pairs, image_size=size, mean=MEAN, std=STD)),
        args.batch_size, last_batch='keep')
    return fit, val_heatmaps, val_points


def evaluate(net, val_heatmaps, val_points, ap_metric):
    accuracy = HeatmapAccuracy()
    for batch in val_heatmaps:
        data, label = [b.as_in_context(mx.cpu()) for b in batch[:2]]  # batchify leaves them in shared memory
        accuracy.update([label], [net(data)])
    ap_metric.reset()
    for data, scale, center, score, imgid in val_points:
        preds, maxvals = get_final_preds(net(data.as_in_context(mx.cpu())), center.asnumpy(), scale.asnumpy())
        ap_metric.update(preds, maxvals, score, imgid)
    with open(os.devnull, 'w') as quiet, contextlib.redirect_stdout(quiet):  # pycocotools prints a table
        _, ap = ap_metric.get()
    return accuracy.get()[1], float(ap)


def main():
    args = parse_args()
    size = [int(v) for v in args.input_size.split(',')]
    ctx = [mx.cpu()]
    net = get_model(args.model, num_joints=17, pretrained_base=True, ctx=ctx, pretrained_ctx=ctx)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # the backbone's parameters are loaded already
        net.initialize(mx.init.MSRAPrelu(), ctx=ctx)
    if args.save_built:
        net(mx.nd.zeros([1, 3] + size))  # the head's shapes are inferred at its first call
        net.save_parameters(args.save_built)
    train = mscoco.keypoints.COCOKeyPoints(args.data_dir, splits=('person_keypoints_train2017',))
    val = mscoco.keypoints.COCOKeyPoints(args.data_dir, splits=('person_keypoints_val2017',))
    fit, val_heatmaps, val_points = loaders(args, size, train, val)
    ap_metric = COCOKeyPointsMetric(val, os.path.join(os.getcwd(), 'keypoints_eval'), use_time=False,
                                    cleanup=True, data_shape=tuple(size), in_vis_thresh=0)
    if args.eval_before:
        accuracy, ap = evaluate(net, val_heatmaps, val_points, ap_metric)
        print(json.dumps({'epoch': 0, 'val_heatmap_accuracy': accuracy, 'val_ap': ap}), flush=True)
    # Cosine to 1 % of the rate over the run, so that the last epochs settle.
    schedule = mx.lr_scheduler.CosineScheduler(max(1, len(fit) * args.epochs), base_lr=args.lr, final_lr=args.lr / 100)
    trainer = gluon.Trainer(net.collect_params(), 'adam', {'learning_rate': args.lr, 'wd': 1e-4,
                                                           'lr_scheduler': schedule})
    l2 = gluon.loss.L2Loss()
    for epoch in range(1, args.epochs + 1):
        losses, accuracy = [], HeatmapAccuracy()
        for batch in fit:
            data, label, weight = [b.as_in_context(mx.cpu()) for b in batch[:3]]
            with autograd.record():
                out = net(data)
                loss = l2(out, label, weight)
            loss.backward()
            trainer.step(data.shape[0])
            losses.append(float(loss.mean().asscalar()))
            accuracy.update([label], [out])
        val_accuracy, ap = evaluate(net, val_heatmaps, val_points, ap_metric)
        loss = sum(losses) / len(losses) if losses else math.nan
        print(json.dumps({'epoch': epoch, 'loss': loss, 'train_heatmap_accuracy': accuracy.get()[1],
                          'val_heatmap_accuracy': val_accuracy, 'val_ap': ap}), flush=True)


if __name__ == '__main__':
    main()
