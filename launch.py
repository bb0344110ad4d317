#!/usr/bin/env python
"""Start an MXNet ps-lite kvstore job (scheduler, servers, workers) and stop all of it when any process fails.

One machine, 2 workers and 1 server on 127.0.0.1::

    python launch.py -n 2 -s 1 -- python train_imagenet.py --kvstore dist_sync

``--launcher ssh -H hosts`` or ``--launcher mpi -H hosts`` for a cluster;
``--help`` lists every flag, docs/distributed.md explains them. The launcher
itself is the ``launcher`` package beside this script.
"""
import sys

from launcher.cli import main

if __name__ == '__main__':
    sys.exit(main())
