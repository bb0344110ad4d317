"""`make demo` shortened to one epoch: table, training lines, re-evaluation, export, plot."""
import os
import re

import onnx
import pytest

from gluon_asymmnet import demo


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


def test_demo_arguments_are_train_imagenet_flags():
    from gluon_asymmnet.training import parse_args
    opt = parse_args(demo.demo_args('x', 15))
    assert (opt.dataset, opt.classes, opt.input_size, opt.model) == ('digits', 10, 32, 'asymmnet_small')
    with pytest.raises(SystemExit):
        demo.main(['--epochs', 'x'])
