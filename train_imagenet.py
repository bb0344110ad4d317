#!/usr/bin/env python
"""Train AsymmNet / MobileNetV3 on ImageNet the GluonCV way; without data flags, on the bundled digits.

The released AsymmNet-L 1.0 run (8 GPUs x 256, docs/design.md section 5)::

    python train_imagenet.py \\
        --rec-train ~/.mxnet/datasets/imagenet/rec/train.rec --rec-train-idx ~/.mxnet/datasets/imagenet/rec/train.idx \\
        --rec-val ~/.mxnet/datasets/imagenet/rec/val.rec --rec-val-idx ~/.mxnet/datasets/imagenet/rec/val.idx \\
        --model asymmnet_large --width-scale 1.0 --asymmrate 1 --dropout 0.2 \\
        --num-gpus 8 --batch-size 256 -j 32 --num-epochs 360 --lr 2.6 --lr-mode cosine --warmup-epochs 5 \\
        --momentum 0.9 --wd 3e-5 --no-wd --label-smoothing --save-dir params_asymmnet_large

is the recipe ``released`` (``gluon_asymmnet.training.recipes``): ``--recipe released``
with the four data flags runs the same; other flags override a recipe's values.

Exit codes: 0 trained, 1 the loss diverged, 2 bad options or data. The
training loop is ``gluon_asymmnet.training``; ``--help`` lists every flag.
"""
import sys

from gluon_asymmnet.cpu import configure_omp_threads

if __name__ == '__main__':
    configure_omp_threads('train_imagenet.py')  # before MXNet is imported (gluon_asymmnet.cpu)
    from gluon_asymmnet.training.cli import main
    code = main()
    if code in (130, 143):
        # Stopped by Ctrl-C or SIGTERM, its files safe and its line printed: end as the signal ends a process,
        # without MXNet's exit-time clean-up (a distributed kvstore's waits for the other workers).
        import os
        import signal
        sys.stdout.flush()
        sys.stderr.flush()
        sig = signal.SIGINT if code == 130 else signal.SIGTERM
        signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
    sys.exit(code)
