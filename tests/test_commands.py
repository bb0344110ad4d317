"""The command spellings the README documents run (help only: the commands' work is tested elsewhere)."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize('command, expected', [
    (['-m', 'gluon_asymmnet.pack'], 'usage: python -m gluon_asymmnet.pack'),   # the alias of data/pack.py
    (['launch.py'], 'usage: python launch.py -n NUM_WORKERS'),
    (['train_imagenet.py'], '--recipe {demo,released}'),
    (['eval.py'], '--corrected-first-block'),
    (['-m', 'gluon_asymmnet.export'], '--width-scale WIDTH_SCALE, --multiplier WIDTH_SCALE'),
])
def test_command_help(command, expected):
    done = subprocess.run([sys.executable] + command + ['--help'], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env=dict(os.environ, PYTHONPATH=ROOT))
    assert done.returncode == 0, done.stderr
    assert expected in done.stdout
