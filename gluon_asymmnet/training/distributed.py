"""The devices and workers of a run: contexts, rank, and the collective operations of a kvstore job.

With ``dist_sync``/``dist_device_sync`` the gradients are summed on the
servers and each worker applies the same update locally
(``update_on_kvstore=False``), so the optimizer state is local and
checkpointable; BatchNorm running statistics are averaged over the workers at
the end of every epoch, so all workers hold identical parameters, and the
validation counts of the shards are summed into the full-set figure.
``dist_async`` updates on the servers (MXNet requires it).
"""
import hashlib
import os

import mxnet as mx
import numpy as np

from .config import ConfigError

__all__ = ['contexts', 'Cluster', 'parameter_digest']


def contexts(num_gpus):
    """``[gpu(0), ..., gpu(n-1)]`` for ``num_gpus`` n > 0, else ``[cpu()]``."""
    if num_gpus > 0:
        available = mx.context.num_gpus()
        if available < num_gpus:
            raise ConfigError('--num-gpus %d: this machine has %d GPU(s)' % (num_gpus, available))
        return [mx.gpu(i) for i in range(num_gpus)]
    return [mx.cpu()]


class Cluster:
    """Rank, worker count and the collective operations of a run (trivial on one machine).

    Parameters
    ----------
    kvstore : str
        ``--kvstore``; ``dist_*`` needs the ``DMLC_*`` environment of a launch.
    """

    def __init__(self, kvstore):
        self.kv = None
        self.rank, self.num_workers = 0, 1
        self.sync = False
        if kvstore.startswith('dist'):
            if 'DMLC_ROLE' not in os.environ:
                raise ConfigError('--kvstore %s needs the DMLC_* environment of a distributed launch '
                                  '(DMLC_ROLE, DMLC_PS_ROOT_URI, DMLC_PS_ROOT_PORT, DMLC_NUM_SERVER, '
                                  'DMLC_NUM_WORKER); start it with launch.py' % kvstore)
            self.kv = mx.kv.create(kvstore)
            self.rank, self.num_workers = self.kv.rank, self.kv.num_workers
            self.sync = 'async' not in kvstore
        self._count_key = None

    @property
    def update_on_kvstore(self):
        """True under ``dist_async``: the servers run the optimizer."""
        return self.kv is not None and not self.sync

    @property
    def reduces(self):
        """True when values are summed over several synchronous workers."""
        return self.kv is not None and self.sync and self.num_workers > 1

    def broadcast_parameters(self, trainer):
        """Give every worker rank 0's parameters through ``trainer``'s keys, and wait until they hold them.

        Gluon's Trainer does this lazily in its first ``step``: each worker
        pulls the initial values and, in the same call, pushes its first
        gradients on the same keys. On CPU, MXNet 1.9.1's dist kvstore sends
        a gradient from the gradient array itself, so the engine does not order
        that push after the pull into the old buffer; a pull the server answers
        after both workers' first gradients of that key were summed returns
        the sum (the servers keep it under ``dist_sync``), and it becomes
        that worker's weight. Later updates, from summed gradients, keep the
        offset: the workers end with different parameters (the classifier's,
        in 8 of 30 two-worker runs of the test with one thread each). Run before training, after
        ``update_on_kvstore``'s optimizer and multipliers are set (the servers
        receive the optimizer here); the first step then finds the keys
        initialised.
        """
        if self.kv is None:
            return
        if not trainer._kv_initialized:
            trainer._init_kvstore()
        if trainer._params_to_init:
            trainer._init_params()
        mx.nd.waitall()

    def average_aux(self, net, trainer):
        """Average BatchNorm running statistics over the workers (keys: the trainer's own)."""
        if not self.reduces:
            return
        index = {p.name: i for i, p in enumerate(trainer._params)}
        for name, param in net.collect_params('.*running_mean|.*running_var').items():
            arrays = param.list_data()
            self.kv.pushpull(index[name], arrays[0], out=arrays)
            for a in arrays:
                a /= self.num_workers

    def sum_counts(self, values, trainer):
        """Element-wise sum of a small float vector over the workers (a key after the trainer's)."""
        arr = mx.nd.array(values, dtype='float64')
        if not self.reduces:
            return arr.asnumpy()
        if self._count_key is None:
            self._count_key = len(trainer._params)
            self.kv.init(self._count_key, mx.nd.zeros(arr.shape, dtype='float64'))
        self.kv.pushpull(self._count_key, arr, out=arr)
        return arr.asnumpy()


def parameter_digest(net):
    """SHA-1 over every parameter's name and bytes, running statistics included.

    Workers of a ``dist_sync`` run log it at the end: equal digests mean
    identical networks.
    """
    h = hashlib.sha1()
    params = net._collect_params_with_prefix()
    for name in sorted(params):
        h.update(name.encode())
        h.update(np.ascontiguousarray(params[name].data(params[name].list_ctx()[0]).asnumpy()).tobytes())
    return h.hexdigest()
