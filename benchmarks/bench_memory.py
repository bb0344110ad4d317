"""How close is ``gluon_asymmnet.memory``'s estimate to what a step really takes? Peak memory against the estimate.

Each configuration runs in a fresh process (peak resident memory only
grows): two training steps (Nesterov SGD, hybridized with static memory, as
``train_imagenet.py`` runs) or two inference calls, then the growth of the
peak resident set over the network's set-up is printed beside
:func:`gluon_asymmnet.memory.step_bytes`. The estimate should stay at or just
below the growth: above it, a run that fits could be refused.

    python benchmarks/bench_memory.py
"""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
CONFIGS = [('asymmnet_large', 1.0, 224, 8, 'train'), ('asymmnet_large', 1.0, 448, 2, 'train'),
           ('asymmnet_small', 0.35, 224, 16, 'train'), ('mobilenetv2_asymm', 1.0, 224, 8, 'train'),
           ('asymmnet_large', 1.0, 224, 8, 'eval'), ('asymmnet_large', 1.0, 448, 8, 'eval'),
           ('asymmnet_small', 0.35, 224, 32, 'eval')]

_STEP = '''
import json, resource, sys
import mxnet as mx
from mxnet import autograd, gluon
import gluon_asymmnet as ga
from gluon_asymmnet.memory import step_bytes
model, width, size, batch, mode = json.loads(sys.argv[1])
net = ga.get_model(model, multiplier=width, classes=1000)
net.initialize(mx.init.Xavier())
estimate = step_bytes(net, batch, size, mode == 'train')
net.hybridize(static_alloc=True, static_shape=True)
x, y = mx.nd.random.uniform(shape=(batch, 3, size, size)), mx.nd.zeros((batch,))
mx.nd.waitall()
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
trainer = gluon.Trainer(net.collect_params(), 'nag', {'learning_rate': 0.01, 'momentum': 0.9})
for _ in range(2):
    if mode == 'train':
        with autograd.record():
            loss = gluon.loss.SoftmaxCrossEntropyLoss()(net(x), y)
        loss.backward()
        trainer.step(batch)
    else:
        net(x)
    mx.nd.waitall()
print(json.dumps(dict(estimate, grew=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base)))
'''


def main():
    from gluon_asymmnet.cpu import configure_omp_threads
    configure_omp_threads(os.path.basename(__file__))
    from gluon_asymmnet.cpu import cpu_description
    print(cpu_description())
    print('%-18s %5s %5s %5s %-5s | %9s %9s | %10s %9s' % ('model', 'width', 'input', 'batch', 'step',
                                                           'estimate', 'grew', 'est/grew', 'sum acts'))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get('PYTHONPATH')])))
    for config in CONFIGS:
        out = subprocess.run([sys.executable, '-c', _STEP, json.dumps(config)], capture_output=True, text=True,
                             env=env, check=True).stdout.strip().splitlines()[-1]
        r = json.loads(out)
        mib = float(1 << 20)
        print('%-18s %5g %5d %5d %-5s | %6.0f MiB %5.0f MiB | %10.2f %5.0f MiB'
              % (config + (r['bytes'] / mib, r['grew'] / mib, r['bytes'] / r['grew'], r['activations'] / mib)))


if __name__ == '__main__':
    main()
