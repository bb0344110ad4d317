"""The one MXNET_HOME lookup that the model store, the demo data, the fused operators and distillation share."""
import os

from gluon_asymmnet import fastops, model_store
from gluon_asymmnet.data import digits
from gluon_asymmnet.home import mxnet_home
from gluon_asymmnet.training import losses


def test_mxnet_home_default_tilde_and_every_user(monkeypatch, tmp_path):
    monkeypatch.delenv('MXNET_HOME', raising=False)
    monkeypatch.setenv('HOME', str(tmp_path / 'user'))
    assert mxnet_home() == str(tmp_path / 'user' / '.mxnet')
    monkeypatch.setenv('MXNET_HOME', '')  # empty is unset, not the current folder
    assert mxnet_home('models') == str(tmp_path / 'user' / '.mxnet' / 'models')
    monkeypatch.setenv('MXNET_HOME', os.path.join('~', 'mx'))
    home = str(tmp_path / 'user' / 'mx')
    assert mxnet_home('a', 'b') == os.path.join(home, 'a', 'b')
    assert model_store.resolve_root() == os.path.join(home, 'models')
    assert model_store.resolve_root(str(tmp_path / 'mine')) == str(tmp_path / 'mine')
    assert digits._default_root() == os.path.join(home, 'datasets', 'digits')
    assert fastops.cache_dir() == os.path.join(home, 'gluon_asymmnet')
    try:
        losses.pretrained_file('resnet18_v1')
    except losses.ConfigError as err:
        assert os.path.join(home, 'models', 'resnet18_v1-') in str(err)
    else:
        raise AssertionError('no file there, so an error naming where it was looked for')
