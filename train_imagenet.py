#!/usr/bin/env python
"""Train AsymmNet / MobileNetV3 on ImageNet the GluonCV way; without data flags, on the bundled digits.

Reproduce the released AsymmNet-L 1.0 run (8 GPUs x 256):

    python train_imagenet.py --rec-train ~/imagenet/rec/train.rec --rec-train-idx ~/imagenet/rec/train.idx \\
        --rec-val ~/imagenet/rec/val.rec --rec-val-idx ~/imagenet/rec/val.idx \\
        --model asymmnet_large --width-scale 1.0 --asymmrate 1 --dropout 0.2 \\
        --num-gpus 8 --batch-size 256 -j 32 --num-epochs 360 --lr 2.6 --lr-mode cosine --warmup-epochs 5 \\
        --wd 3e-5 --no-wd --label-smoothing --save-dir params_asymmnet_large

See ``python train_imagenet.py --help`` and gluon_asymmnet/training.
"""
import sys

from gluon_asymmnet.training.cli import main

if __name__ == '__main__':
    sys.exit(main())
