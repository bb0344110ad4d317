"""The recipe's parts for real: label smoothing, mixup, distillation, --last-gamma, --no-wd, evaluation."""
import os

import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd, gluon

from gluon_asymmnet import get_model
from gluon_asymmnet.metrics import evaluate_accuracy
from gluon_asymmnet.data.pack import pack_arrays
from gluon_asymmnet.training import (TrainingObjective, build_loss, build_network, build_objective, mix,
                                     mixup_lambda, parse_args, smooth_labels, train)
from gluon_asymmnet.training.losses import pretrained_file

from test_training import data_flags, images

K = 7   # classes of the fixed batch


def log_softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def fixed_batch():
    rng = np.random.RandomState(5)
    return rng.randn(6, K).astype(np.float32) * 3, np.array([0, 3, 6, 2, 2, 5], dtype=np.float32)


def opts(*extra):
    return parse_args(['--num-epochs', '10'] + list(extra))


def test_label_smoothing_loss_matches_numpy():
    z, y = fixed_batch()
    q = np.full((6, K), 0.1 / K)
    q[np.arange(6), y.astype(int)] += 0.9
    expected = -(q * log_softmax(z)).sum(axis=1)
    target = smooth_labels(mx.nd.array(y), K)
    assert np.allclose(target.asnumpy(), q, atol=1e-7)
    loss = build_objective(opts('--label-smoothing'), [mx.cpu()]).loss(mx.nd.array(z), target).asnumpy()
    assert np.allclose(loss, expected, rtol=1e-5)


def test_mixup_batch_lambda_and_loss_match_numpy():
    z, y = fixed_batch()
    x = np.random.RandomState(6).rand(6, 3, 4, 4).astype(np.float32)
    opt = opts('--mixup', '--mixup-alpha', '0.4', '--mixup-off-epoch', '2', '--label-smoothing')
    assert opt.mixup_until == 8
    lam = mixup_lambda(opt.mixup_alpha, opt.seed, 3, 5, until=opt.mixup_until)
    assert 0 < lam < 1 and lam == mixup_lambda(0.4, 0, 3, 5, until=8) and lam != mixup_lambda(0.4, 0, 3, 6, until=8)
    assert lam != mixup_lambda(0.4, 0, 3, 5, rank=1, until=8) and lam != mixup_lambda(0.4, 1, 3, 5, until=8)
    assert mixup_lambda(0.4, 0, 8, 0, until=8) == 1.0 and mixup_lambda(0.4, 0, 9, 3, until=8) == 1.0   # the last 2
    objective = build_objective(opt, [mx.cpu()])   # the loss and metric of the config (10 digit classes)
    assert isinstance(objective.new_metric(), mx.metric.RMSE)
    mixed_in, mixed_target, soft = TrainingObjective(
        K, label_smoothing=True, mixup=True, mixup_alpha=0.4, mixup_until=8).batch([mx.nd.array(x)], [mx.nd.array(y)],
                                                                                  3, 5)
    assert soft is None
    mixed, target = mix(mx.nd.array(x), mx.nd.array(y), lam, K, 0.1)
    assert np.allclose(mixed.asnumpy(), lam * x + (1 - lam) * x[::-1], atol=1e-6)
    onehot = lambda labels: np.eye(K)[labels.astype(int)] * 0.9 + 0.1 / K  # noqa: E731
    q = lam * onehot(y) + (1 - lam) * onehot(y[::-1])
    assert np.allclose(target.asnumpy(), q, atol=1e-6)
    assert np.allclose(mixed_in[0].asnumpy(), mixed.asnumpy()) and np.allclose(mixed_target[0].asnumpy(), q, atol=1e-6)
    loss = objective.loss(mx.nd.array(z), target).asnumpy()
    assert np.allclose(loss, -(q * log_softmax(z)).sum(axis=1), rtol=1e-5)


@pytest.mark.parametrize('hard_weight', [0.0, 0.3, 1.0])
def test_distillation_loss_matches_numpy(hard_weight):
    z, y = fixed_batch()
    teacher = np.random.RandomState(7).randn(6, K).astype(np.float32) * 4
    T = 3.0
    p = np.exp(log_softmax(teacher / T))
    soft = -(p * log_softmax(z / T)).sum(axis=1) * T * T
    hard = -log_softmax(z)[np.arange(6), y.astype(int)]
    expected = (1 - hard_weight) * soft + hard_weight * hard
    p_nd = mx.nd.softmax(mx.nd.array(teacher) / T)   # what the loop feeds as the soft target
    loss = build_loss(temperature=T, hard_weight=hard_weight)(mx.nd.array(z), mx.nd.array(y), p_nd).asnumpy()
    assert np.allclose(loss, expected, rtol=1e-5)


def test_last_gamma_zeroes_exactly_the_residual_bottlenecks():
    net = build_network(opts('--model', 'asymmnet_large', '--width-scale', '0.35', '--last-gamma'), [mx.cpu()])
    residual = [b for b in net.blocks if b.residual]
    plain = [b for b in net.blocks if not b.residual]
    # AsymmNet-L: 15 blocks; the 5 that change width or stride (blocks 2, 4, 7, 11, 13) have no skip, nor has
    # block 1 at width 0.35 in the authors' network (docs/design.md section 8.1).
    assert len(residual) == 9 and len(plain) == 6
    for b in residual:
        assert not b.conv2.bn.gamma.data().asnumpy().any()
    for b in plain:
        assert (b.conv2.bn.gamma.data().asnumpy() == 1).all()
    # A zeroed block starts as the identity (inference mode: BN beta 0, so the branch adds 0).
    x = mx.nd.random.uniform(shape=(1, residual[0].conv2.bn.gamma.shape[0], 8, 8))
    # the block's input width equals its output width when it is residual
    assert np.array_equal(residual[0](x).asnumpy(), x.asnumpy())
    default = build_network(opts('--model', 'asymmnet_large', '--width-scale', '0.35'), [mx.cpu()])
    assert all((b.conv2.bn.gamma.data().asnumpy() == 1).all() for b in default.blocks)


def test_no_wd_exempts_bn_and_biases_from_weight_decay():
    """One Nesterov step with momentum 0: decayed parameters move by lr*(g + wd*w), exempt ones by lr*g."""
    net = build_network(opts('--model', 'asymmnet_small', '--width-scale', '0.35', '--no-wd'), [mx.cpu()])
    lr, wd = 0.1, 0.5
    trainer = gluon.Trainer(net.collect_params(), 'nag', {'learning_rate': lr, 'wd': wd, 'momentum': 0})
    params = {k: p for k, p in net.collect_params().items() if p.grad_req != 'null'}
    before = {k: p.data().asnumpy().copy() for k, p in params.items()}
    x = mx.nd.random.uniform(shape=(4, 3, 32, 32))
    with autograd.record():
        loss = gluon.loss.SoftmaxCrossEntropyLoss()(net(x), mx.nd.array([1, 2, 3, 4]))
    loss.backward()
    grads = {k: p.grad().asnumpy().copy() for k, p in params.items()}
    trainer.step(1)
    exempt = [k for k in params if k.endswith(('gamma', 'beta', 'bias'))]
    decayed = [k for k in params if k not in exempt]
    assert exempt and decayed and all(k.endswith('weight') for k in decayed)
    for k in exempt:
        assert np.allclose(params[k].data().asnumpy(), before[k] - lr * grads[k], atol=1e-6), k
    for k in decayed:
        assert np.allclose(params[k].data().asnumpy(), before[k] - lr * (grads[k] + wd * before[k]), atol=1e-6), k


class Batches:
    def __init__(self, pairs):
        self.pairs, self.resets = pairs, 0

    def reset(self):
        self.resets += 1

    def __iter__(self):
        return iter(self.pairs)


def test_evaluate_accuracy_counts_top1_and_top5():
    net = gluon.nn.Dense(10, in_units=10, use_bias=False)   # identity: the logits are the inputs
    net.initialize()
    net.weight.set_data(mx.nd.array(np.eye(10)))
    rng = np.random.RandomState(0)
    logits = [rng.randn(n, 10).astype(np.float32) for n in (5, 5, 3)]
    labels = [rng.randint(0, 10, size=n).astype(np.float32) for n in (5, 5, 3)]
    batches = Batches([(mx.nd.array(z), mx.nd.array(y)) for z, y in zip(logits, labels)])
    out = evaluate_accuracy(net, batches)
    z, y = np.concatenate(logits), np.concatenate(labels).astype(int)
    rank = (z > z[np.arange(len(y)), y][:, None]).sum(axis=1)
    assert batches.resets == 1 and out['num_samples'] == 13
    assert out['top1'] == pytest.approx((rank == 0).mean()) and out['top5'] == pytest.approx((rank < 5).mean())


@pytest.fixture(scope='module')
def digits4(tmp_path_factory):
    root = tmp_path_factory.mktemp('digits4')
    files = {}
    for split, n, seed in (('train', 48, 11), ('val', 16, 12)):
        imgs, labels = images(n, seed)
        out = pack_arrays(imgs, labels, str(root / split))
        files['rec_' + split], files['rec_%s_idx' % split] = out['rec'], out['idx']
    return files


def short(files, save_dir, *extra):
    return parse_args(data_flags(files) + [
        '--dataset', 'imagenet200', '--model', 'asymmnet_small', '--width-scale', '0.35', '--input-size', '16',
        '--batch-size', '16', '--num-epochs', '1', '--lr', '0.05', '-j', '0', '--save-dir', str(save_dir),
        '--save-frequency', '1', '--log-interval', '1'] + list(extra))


def final_params(out):
    path = os.path.join(out['save_dir'], 'imagenet200-asymmnet_small-0.params')
    return {k: v.asnumpy() for k, v in mx.nd.load(path).items()}


def test_distillation_run_uses_the_teacher(digits4, tmp_path, monkeypatch):
    """A teacher found as GluonCV's pretrained file: hard weight 1 trains exactly as without it, 0.5 does not."""
    teacher = get_model('mobilenetv3_small', classes=200)
    teacher.initialize(mx.init.Normal(0.5))
    home = tmp_path / 'mxhome'
    os.makedirs(home / 'models')
    monkeypatch.setenv('MXNET_HOME', str(home))
    name = 'mobilenetv3_small-10430433.params'
    teacher.save_parameters(str(home / 'models' / name))
    assert pretrained_file('mobilenetv3_small') == str(home / 'models' / name)
    plain = final_params(train(short(digits4, tmp_path / 'plain', '--label-smoothing')))
    hard_only = final_params(train(short(digits4, tmp_path / 'hard', '--label-smoothing', '--teacher',
                                         'mobilenetv3_small', '--hard-weight', '1')))
    distilled = train(short(digits4, tmp_path / 'distil', '--label-smoothing', '--teacher', 'mobilenetv3_small',
                            '--hard-weight', '0.5', '--temperature', '4'))
    assert all(np.array_equal(plain[k], hard_only[k]) for k in plain)
    assert any(not np.array_equal(plain[k], v) for k, v in final_params(distilled).items())
    assert 'accuracy=' in open(distilled['log_file']).read()


def test_teacher_weights_must_exist(tmp_path, monkeypatch):
    monkeypatch.setenv('MXNET_HOME', str(tmp_path))
    with pytest.raises(ValueError, match='mobilenetv3_large-eaa44578.params is not on this machine'):
        pretrained_file('mobilenetv3_large')
    with pytest.raises(ValueError, match='GluonCV publishes no pretrained weights'):
        pretrained_file('asymmnet_large')


def test_folder_data_run(tmp_path):
    import cv2
    for split, n in (('train', 40), ('val', 12)):
        imgs, labels = images(n, 20 if split == 'train' else 21)
        for k, (img, c) in enumerate(zip(imgs, labels)):
            folder = tmp_path / 'data' / split / ('n0%d' % c)
            os.makedirs(folder, exist_ok=True)
            cv2.imwrite(str(folder / ('%d.JPEG' % k)), img[:, :, ::-1])
    opt = parse_args(['--data-dir', str(tmp_path / 'data'), '--model', 'mobilenetv3_small', '--width-scale', '0.35',
                      '--input-size', '16', '--batch-size', '16', '--num-epochs', '1', '-j', '0',
                      '--mode', 'imperative', '--save-dir', str(tmp_path / 'run'), '--log-interval', '1'])
    out = train(opt)
    assert out['num_update'] == 3 and len(out['history']) == 1
    assert 0 <= out['history'][0]['top1'] <= 1 and out['history'][0]['top5'] >= out['history'][0]['top1']


@pytest.mark.parametrize('flags, message', [
    (['--kvstore', 'dist_sync'], 'needs the DMLC_\\* environment of a distributed launch'),
    (['--num-gpus', '64'], '--num-gpus 64: this machine has \\d+ GPU'),
])
def test_device_and_cluster_flags_checked_before_training(flags, message, tmp_path, monkeypatch):
    monkeypatch.delenv('DMLC_ROLE', raising=False)
    with pytest.raises(ValueError, match=message):
        train(parse_args(['--save-dir', str(tmp_path)] + flags))
    assert not os.path.exists(tmp_path / 'train_imagenet.log')
