"""`make demo`: the model table, then a short CPU training run (replaced by the training demo)."""
import mxnet as mx
import numpy as np
from mxnet import autograd, gluon

from . import get_model, get_model_list, profile


def model_table():
    rows = ['%-18s %5s %4s %14s %12s %12s' % ('model', 'width', 'r', 'MACs', 'params', 'params(paper)')]
    for name in get_model_list():
        p = profile(get_model(name))
        rows.append('%-18s %5.2f %4s %14d %12d %12d' % (
            name, 1.0, get_model(name).asymmrate, p['macs'], p['params'], p['params_paper']))
    return '\n'.join(rows)


def main():
    print(model_table())
    net = get_model('asymmnet_small', multiplier=0.5, classes=10)
    net.initialize(mx.init.MSRAPrelu())
    net.hybridize(static_alloc=True, static_shape=True)
    trainer = gluon.Trainer(net.collect_params(), 'nag', {'learning_rate': 0.05, 'momentum': 0.9})
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    x = mx.nd.random.uniform(shape=(16, 3, 64, 64))
    y = mx.nd.array(np.arange(16) % 10)
    for step in range(10):
        with autograd.record():
            loss = loss_fn(net(x), y)
        loss.backward()
        trainer.step(16)
        print('step %d loss %.4f' % (step, loss.mean().asscalar()))


if __name__ == '__main__':
    main()
