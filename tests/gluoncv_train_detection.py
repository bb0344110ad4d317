"""Train and evaluate a detection model (YOLOv3 or CenterNet) with GluonCV's own pieces, as its scripts do.

Run through ``python -m gluon_asymmnet.with_gluoncv`` (tests/test_with_gluoncv.py,
benchmarks/learn_downstream.py): the model comes from GluonCV's
``get_model``, the data from GluonCV's ``VOCDetection`` (VOC2007 + VOC2012
trainval, VOC2007 test) and its YOLOv3 / CenterNet train and val transforms
(their target generators), the losses are the models' own (YOLOv3) or
GluonCV's ``HeatmapFocalLoss`` and ``MaskedL1Loss`` (CenterNet), the metric is
GluonCV's ``VOC07MApMetric``. One JSON line per epoch on stdout (epoch 0:
before training).
"""
import argparse
import json
import math
import warnings

import mxnet as mx
from mxnet import autograd, gluon
import gluoncv as gcv
from gluoncv import data as gdata
from gluoncv.data.batchify import Pad, Stack, Tuple
from gluoncv.data.transforms.presets.center_net import CenterNetDefaultTrainTransform, CenterNetDefaultValTransform
from gluoncv.data.transforms.presets.yolo import YOLO3DefaultTrainTransform, YOLO3DefaultValTransform
from gluoncv.model_zoo import get_model
from gluoncv.utils.metrics.voc_detection import VOC07MApMetric


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--model', required=True, help='yolo3_* or center_net_*')
    p.add_argument('--voc-root', required=True, help='the folder with VOC2007 and VOC2012')
    p.add_argument('--data-shape', type=int, default=96)
    p.add_argument('--epochs', type=int, default=1)
    p.add_argument('--batch-size', type=int, default=4)
    p.add_argument('--lr', type=float, default=None, help='default: 1e-3 (YOLOv3, SGD), 5e-4 (CenterNet, Adam)')
    p.add_argument('--eval-before', action='store_true', help='evaluate before training too (epoch 0)')
    p.add_argument('--save-built', help='save the parameters as built (before training) to this file')
    return p.parse_args()


class YOLO3:
    """YOLOv3: the network computes its losses from the targets of YOLO3DefaultTrainTransform."""
    lr, optimizer = 1e-3, 'sgd'

    def __init__(self, net, shape):
        self.train_transform = YOLO3DefaultTrainTransform(shape, shape, net)
        self.val_transform = YOLO3DefaultValTransform(shape, shape)
        self.batchify = Tuple(*([Stack() for _ in range(6)] + [Pad(axis=0, pad_val=-1)]))
        net.set_nms(nms_thresh=0.45, nms_topk=400)

    @staticmethod
    def loss(net, batch):
        data, targets, gt_boxes = batch[0], batch[1:6], batch[6]
        return sum(net(data, gt_boxes, *targets))


class CenterNet:
    """CenterNet: focal loss on the class heatmaps, masked L1 on sizes and centre offsets."""
    lr, optimizer = 5e-4, 'adam'

    def __init__(self, net, shape):
        self.train_transform = CenterNetDefaultTrainTransform(shape, shape, num_class=len(net.classes),
                                                              scale_factor=net.scale)
        self.val_transform = CenterNetDefaultValTransform(shape, shape)
        self.batchify = Tuple(*[Stack() for _ in range(6)])
        self.heatmap_loss = gcv.loss.HeatmapFocalLoss(from_logits=True)
        self.wh_loss = gcv.loss.MaskedL1Loss(weight=0.1)
        self.offset_loss = gcv.loss.MaskedL1Loss(weight=1.0)

    def loss(self, net, batch):
        data, heatmap, wh, wh_mask, offset, offset_mask = batch
        heatmap_pred, wh_pred, offset_pred = net(data)
        return (self.heatmap_loss(heatmap_pred, heatmap) + self.wh_loss(wh_pred, wh, wh_mask)
                + self.offset_loss(offset_pred, offset, offset_mask))


def evaluate(net, val_loader, metric):
    metric.reset()
    net.hybridize()  # a new graph: the cached one may be the training one (other outputs), as GluonCV's scripts do
    for batch in val_loader:
        data, label = [b.as_in_context(mx.cpu()) for b in batch]  # batchify leaves them in shared memory
        ids, scores, boxes = net(data)
        metric.update(boxes.clip(0, data.shape[2]), ids, scores, label.slice_axis(axis=-1, begin=0, end=4),
                      label.slice_axis(axis=-1, begin=4, end=5), label.slice_axis(axis=-1, begin=5, end=6))
    return float(metric.get()[1][-1])


def main():
    args = parse_args()
    net = get_model(args.model, pretrained_base=True)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # the backbone's parameters are loaded already
        net.initialize()
    if args.save_built:
        net(mx.nd.zeros((1, 3, args.data_shape, args.data_shape)))  # the head's shapes are inferred at its first call
        net.save_parameters(args.save_built)
    family = YOLO3 if args.model.startswith('yolo3') else CenterNet
    task = family(net, args.data_shape)
    train = gdata.VOCDetection(root=args.voc_root, splits=[(2007, 'trainval'), (2012, 'trainval')])
    val = gdata.VOCDetection(root=args.voc_root, splits=[(2007, 'test')])
    fit = gluon.data.DataLoader(train.transform(task.train_transform), args.batch_size, shuffle=True,
                                batchify_fn=task.batchify, last_batch='discard')
    val_loader = gluon.data.DataLoader(val.transform(task.val_transform), args.batch_size,
                                       batchify_fn=Tuple(Stack(), Pad(pad_val=-1)), last_batch='keep')
    metric = VOC07MApMetric(iou_thresh=0.5, class_names=val.classes)
    if args.eval_before:
        print(json.dumps({'epoch': 0, 'val_map': evaluate(net, val_loader, metric)}), flush=True)
    lr = args.lr or family.lr
    # Cosine to 1 % of the rate over the run, so that the last epochs settle.
    schedule = mx.lr_scheduler.CosineScheduler(max(1, len(fit) * args.epochs), base_lr=lr, final_lr=lr / 100)
    trainer = gluon.Trainer(net.collect_params(), family.optimizer, dict(
        {'learning_rate': lr, 'wd': 5e-4 if family is YOLO3 else 1e-4, 'lr_scheduler': schedule},
        **({'momentum': 0.9} if family.optimizer == 'sgd' else {})))
    for epoch in range(1, args.epochs + 1):
        losses = []
        net.hybridize()
        for batch in fit:
            batch = [b.as_in_context(mx.cpu()) for b in batch]
            with autograd.record():
                loss = task.loss(net, batch)
            loss.backward()
            trainer.step(batch[0].shape[0])
            losses.append(float(loss.mean().asscalar()))
        print(json.dumps({'epoch': epoch, 'loss': sum(losses) / len(losses) if losses else math.nan,
                          'val_map': evaluate(net, val_loader, metric)}), flush=True)


if __name__ == '__main__':
    main()
