"""`make demo` shortened to one epoch: table, training lines, re-evaluation, export, plot."""
import os
import re

import onnx
import pytest

from gluon_asymmnet import demo
from gluon_asymmnet.evaluation import main


def test_demo_one_epoch_end_to_end(tmp_path, capsys):
    out = tmp_path / 'demo'
    demo.main(['--epochs', '1', '--out', str(out)])
    text = capsys.readouterr().out
    # The model table (docs/design.md section 3 counts at width 1.0).
    assert re.search(r'asymmnet_large\s+1\.00\s+1\s+216918096\s+6076608\s+5991776', text)
    assert re.search(r'mobilenetv3_small\s+1\.00\s+0\s+\d+', text)
    logged = re.findall(r'^\[Epoch 0\] validation: top1=(\d\.\d+) top5=(\d\.\d+)$', text, re.M)
    assert len(logged) == 1
    again = re.search(r'evaluated again with evaluate_accuracy: top1=(\d\.\d+) top5=(\d\.\d+) on 359 held-out', text)
    assert again and again.groups() == logged[0]
    best = re.search(r'best checkpoint\s+(\S+)', text).group(1)
    assert os.path.isfile(best) and os.path.basename(best).startswith('%.4f-digits-' % float(logged[0][0]))
    onnx_path = re.search(r'export \(onnx\s*\)\s+(\S+)', text).group(1)
    onnx.checker.check_model(onnx.load(onnx_path))
    assert os.path.isfile(re.search(r'export \(symbol\)\s+(\S+)', text).group(1))
    assert os.path.isfile(re.search(r'curve plot\s+(\S+)', text).group(1))
    assert re.search(r'Held-out top-1 \d\.\d{4} after 1 epochs', text)
    # The command it prints names what the checkpoint sees in the held-out digits by the classes its run recorded.
    command = re.search(r'^    python eval\.py (--params \S+ --predict \S+)$', text, re.M).group(1).split()
    assert main(command + ['--topk', '1']) == 0
    shown = re.findall(r'^(\S+-true-(\d)\.png)\n +\d+\.\d\d %  (\d)$', capsys.readouterr().out, re.M)
    assert len(shown) == 8 and all(os.path.isfile(path) for path, _, _ in shown)


def test_demo_recipe_is_train_imagenet_flags():
    from gluon_asymmnet.training import parse_args, recipe_argv, train_recipe
    cfg = train_recipe('demo', save_dir='x')
    assert (cfg.dataset, cfg.classes, cfg.input_size, cfg.model, cfg.num_epochs) == (
        'digits', 10, 32, 'asymmnet_small', 15)
    assert parse_args(recipe_argv('demo', save_dir='x')) == cfg == parse_args(['--recipe', 'demo', '--save-dir', 'x'])
    # One epoch: the warm-up shrinks to leave an epoch of the main schedule.
    assert train_recipe('demo', num_epochs=1).warmup_epochs == 0
    with pytest.raises(SystemExit):
        demo.main(['--epochs', 'x'])
