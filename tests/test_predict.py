"""eval.py --predict and gluon_asymmnet.predict: evaluation's logits, class names, photos as they come, bad files."""
import io
import json
import os

import mxnet as mx
import numpy as np
import pytest
from PIL import Image, ImageOps

import gluon_asymmnet as ga
from conftest import assert_sensitive, rel_err
from gluon_asymmnet.evaluation import eval_batches, main, random_weights
from gluon_asymmnet.prediction import imagenet_class_names, input_batch, read_image
from test_eval import demo_model  # noqa: F401  (the session's demo checkpoint, trained once)

SMALL_ARGS = ['--model', 'asymmnet_small', '--width-scale', '0.35', '--classes', '10', '--input-size', '32']
PRE = ga.get_model('asymmnet_small', multiplier=0.35, classes=10).preprocess_config.replace(input_size=32)
RELEASED = '0.7542-imagenet-modifiedv3-358-best.params'


@pytest.fixture(scope='module')
def small(tmp_path_factory):
    net = random_weights(ga.get_model('asymmnet_small', multiplier=0.35, classes=10), seed=3)
    params = str(tmp_path_factory.mktemp('small') / 'net.params')
    net.save_parameters(params)
    return net, params


def _photo(h=45, w=61, seed=0):
    """An RGB photo-like array: smooth gradients (so orientation and crop matter) and noise."""
    rng = np.random.RandomState(seed)
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([255 * x / w, 255 * y / h, 128 + 60 * np.sin(x / 5.0)], axis=2) + rng.normal(0, 20, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def _save(img, path, fmt, **kw):
    Image.fromarray(img).save(str(path), fmt, **kw)
    return str(path)


def _run(argv, capsys):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_predict_gives_the_logits_of_evaluation(small, tmp_path, capsys):
    """An image predicted = the same image evaluated in a one-image folder, bit for bit, API and command line."""
    net, params = small
    (tmp_path / 'one' / 'c0').mkdir(parents=True)
    path = _save(_photo(), tmp_path / 'one' / 'c0' / 'photo.jpg', 'JPEG', quality=90)
    batches, _ = eval_batches(image_folder=str(tmp_path / 'one'), batch_size=1, input_size=32,
                              crop_ratio=PRE.crop_ratio, mean=PRE.mean, std=PRE.std)
    (data, _), = list(batches)
    evaluated = net(data).asnumpy()[0]
    predicted = ga.predict(net, path, topk=3, preprocess=PRE)
    assert np.array_equal(predicted.logits, evaluated)
    # It could fail: another crop, or the network's weights changed a little, moves the logits well beyond 0.
    other = ga.predict(net, path, preprocess=PRE.replace(crop_ratio=1.0))
    assert rel_err(other.logits, evaluated) > 1e-3
    assert_sensitive(net, data)
    probs = np.exp(evaluated - evaluated.max()) / np.exp(evaluated - evaluated.max()).sum()
    assert predicted.indices == list(np.argsort(-probs)[:3])
    # The command line, preprocessing from the model's config and the flags, as eval.py evaluates.
    out_json = str(tmp_path / 'p.json')
    code, out, _ = _run(SMALL_ARGS + ['--params', params, '--predict', path, '--topk', '10', '--json', out_json],
                        capsys)
    assert code == 0 and path in out and 'class names from indices' in out
    (shown,) = json.loads(open(out_json).read())['predictions']
    assert shown['image'] == path
    assert [c['index'] for c in shown['top']] == list(np.argsort(-probs))
    assert [c['probability'] for c in shown['top']] == pytest.approx(sorted(probs, reverse=True), rel=1e-6)
    # --class-names names the outputs, line = index.
    words = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine']
    (tmp_path / 'names.txt').write_text('\n'.join(words) + '\n')
    code, out, _ = _run(SMALL_ARGS + ['--params', params, '--predict', path, '--topk', '2', '--class-names',
                                      str(tmp_path / 'names.txt'), '--json', out_json], capsys)
    (shown,) = json.loads(open(out_json).read())['predictions']
    assert code == 0 and [c['name'] for c in shown['top']] == [words[i] for i in np.argsort(-probs)[:2]]
    assert '  %s  [%d]' % (shown['top'][0]['name'], shown['top'][0]['index']) in out


def test_api_takes_paths_arrays_and_pil_images(small, tmp_path):
    net, _ = small
    img = _photo()
    path = _save(img, tmp_path / 'a.png', 'PNG')
    by_path = ga.predict(net, [path], preprocess=PRE)[0]
    for other in (img, Image.fromarray(img), img[None], mx.nd.array(img, dtype='uint8')):
        got = ga.predict(net, other, preprocess=PRE)
        got = got[0] if isinstance(got, list) else got
        assert np.array_equal(got.logits, by_path.logits) and got.names == by_path.names
    assert len(ga.predict(net, [img] * 5, topk=20, preprocess=PRE, batch_size=2)) == 5
    assert len(by_path.indices) == 5 and by_path.probabilities == sorted(by_path.probabilities, reverse=True)
    assert ga.predict(net, img, topk=20, preprocess=PRE).names == [str(i) for i in ga.predict(
        net, img, topk=20, preprocess=PRE).indices]   # 10 outputs: indices, all of them
    named = ga.predict(net, img, class_names=['zero', 'one'], preprocess=PRE, topk=10)
    assert set(named.names) == {'zero', 'one'} | {str(i) for i in range(2, 10)}
    with pytest.raises(ValueError, match='11 class names for a network of 10 outputs'):
        ga.predict(net, img, class_names=[str(i) for i in range(11)], preprocess=PRE)
    with pytest.raises(ValueError, match='topk'):
        ga.predict(net, img, topk=0)


def test_demo_checkpoint_names_the_digits_its_run_recorded(demo_model, tmp_path, capsys):  # noqa: F811
    """The issue's command: a folder of photos, a checkpoint of the demo, names (and pictures) out."""
    from gluon_asymmnet.data import RecordSource, demo_dataset
    from gluon_asymmnet.data.transforms import decode
    demo = demo_dataset()
    source = RecordSource(demo['rec_val'], demo['rec_val_idx'])
    folder = tmp_path / 'photos'
    (folder / 'more').mkdir(parents=True)
    labels = {}
    for i in range(6):
        label, _, payload = source.read(i)
        path = _save(decode(payload), folder / ('more' if i % 2 else '') / ('digit%d.png' % i), 'PNG')
        labels[path] = str(int(label))
    (folder / '.hidden.png').write_bytes(b'not an image')   # hidden: not listed
    out_json, vis = str(tmp_path / 'p.json'), str(tmp_path / 'vis')
    code, out, err = _run(['--params', demo_model['params'], '--predict', str(folder), '--json', out_json,
                           '--save-vis', vis], capsys)
    assert code == 0 and 'skipped' not in err
    assert 'class names from the run' in out
    shown = json.loads(open(out_json).read())
    assert sorted(p['image'] for p in shown['predictions']) == sorted(labels)
    assert shown['skipped'] == [] and shown['preprocess']['input_size'] == 32
    for p in shown['predictions']:
        assert len(p['top']) == 5 and all(c['name'] == str(c['index']) for c in p['top'])
    # The run learned something: most of these digits are its first choice.
    assert sum(p['top'][0]['name'] == labels[p['image']] for p in shown['predictions']) >= 4
    assert sorted(os.listdir(vis)) == sorted(os.path.basename(p) for p in labels)
    assert Image.open(os.path.join(vis, 'digit0.png')).size[1] > 640   # the picture, its classes beneath


def test_released_file_gives_imagenet_names(tmp_path, capsys):
    net = random_weights(ga.get_model('asymmnet_large'), seed=1)
    net.save_parameters(str(tmp_path / RELEASED))
    photo = _save(_photo(300, 400), tmp_path / 'cat.jpg', 'JPEG')
    out_json = str(tmp_path / 'p.json')
    code, out, _ = _run(['--model', 'asymmnet_large', '--params', str(tmp_path / RELEASED), '--predict', photo,
                         '--topk', '3', '--json', out_json], capsys)
    assert code == 0 and 'class names from ImageNet' in out
    (shown,) = json.loads(open(out_json).read())['predictions']
    names = imagenet_class_names()
    assert len(names) == 1000 and names[:2] == ['tench', 'goldfish']
    assert [c['name'] for c in shown['top']] == [names[c['index']] for c in shown['top']]
    assert all('  %s  [%d]' % (c['name'], c['index']) in out for c in shown['top'])
    # Synset ids (an ImageNet folder run's class names) read as names.
    assert ga.predict(net, photo, class_names=['n01440764'], topk=1000).names.count('tench') == 1


# ---------------------------------------------------------------------------
# Photos as they come


def test_photos_as_they_come(tmp_path):
    img = _photo()
    grey = img[:, :, 0]
    # EXIF orientation 6 (rotate 90 clockwise to view): read upright, as a viewer shows it.
    exif = Image.new('RGB', (1, 1)).getexif()
    exif[0x0112] = 6
    rotated = _save(img, tmp_path / 'exif.jpg', 'JPEG', quality=95, exif=exif.tobytes())
    upright = np.asarray(ImageOps.exif_transpose(Image.open(rotated)).convert('RGB')).astype(int)
    got = read_image(rotated)
    assert got.shape == (61, 45, 3) and np.abs(got.astype(int) - upright).max() <= 2
    # Not merely the right shape: closer to the clockwise turn than to the other one by far.
    off = [np.abs(got.astype(int) - np.rot90(img, k).astype(int)).mean() for k in (-1, 1)]
    assert off[0] < 0.5 * off[1], off
    cases = {
        'alpha.png': (np.dstack([img, grey]), 'PNG', img),                   # alpha dropped, as GluonCV/timm read
        'grey.png': (grey, 'PNG', np.dstack([grey] * 3)),
        'lossless.webp': (img, 'WEBP', img),
        'frame.gif': (np.dstack([grey] * 3), 'GIF', np.dstack([grey] * 3)),  # OpenCV has no GIF: Pillow reads it
        'photo.tif': (img, 'TIFF', img),
    }
    for name, (pixels, fmt, expected) in cases.items():
        kw = {'lossless': True} if fmt == 'WEBP' else {}
        got = read_image(_save(pixels, tmp_path / name, fmt, **kw))
        assert got.dtype == np.uint8 and np.array_equal(got, expected), name
    deep = (img[:, :, 0].astype(np.uint16) << 8) | 0xff                  # 16-bit grey: the top 8 bits
    Image.fromarray(deep).save(str(tmp_path / 'deep.png'))
    assert np.array_equal(read_image(str(tmp_path / 'deep.png')), np.dstack([img[:, :, 0]] * 3))
    cmyk = str(tmp_path / 'cmyk.jpg')
    Image.fromarray(img).convert('CMYK').save(cmyk, 'JPEG', quality=95)
    assert np.abs(read_image(cmyk).astype(int) - np.asarray(Image.open(cmyk).convert('RGB')).astype(int)).max() <= 3
    # Every one of them classifies, preprocessed to the network's input.
    assert input_batch([str(p) for p in sorted(tmp_path.iterdir())], PRE).shape == (8, 3, 32, 32)


def test_unreadable_images_are_named_and_skipped(small, tmp_path, capsys):
    _, params = small
    folder = tmp_path / 'mixed'
    folder.mkdir()
    good = _save(_photo(), folder / 'good.jpg', 'JPEG')
    (folder / 'empty.jpg').write_bytes(b'')
    (folder / 'text.png').write_text('hello')
    buf = io.BytesIO()
    Image.fromarray(_photo()).save(buf, 'PNG')
    (folder / 'cut.png').write_bytes(buf.getvalue()[:40])                # truncated in its header
    (folder / 'phone.heic').write_bytes(b'\x00\x00\x00\x18ftypheic' + bytes(64))   # a format OpenCV lacks
    _save(_photo(80, 90), folder / 'huge.png', 'PNG')                    # above the --max-image-pixels given
    out_json = str(tmp_path / 'p.json')
    code, out, err = _run(SMALL_ARGS + ['--params', params, '--predict', str(folder), '--json', out_json,
                                        '--max-image-pixels', '5000'], capsys)
    assert code == 0 and good in out
    skipped = json.loads(open(out_json).read())['skipped']
    bad = sorted(str(folder / n) for n in ('cut.png', 'empty.jpg', 'huge.png', 'phone.heic', 'text.png'))
    assert sorted(s['image'] for s in skipped) == bad
    assert [line for line in err.splitlines() if line.startswith('skipped: ')] == [
        'skipped: %s' % s['error'] for s in skipped]
    assert all(s['error'].startswith(s['image'] + ' ') for s in skipped)
    assert '90 x 80 = 7200 pixels, above the limit of 5000' in err and 'phone.heic is not an image format' in err
    # None readable: exit status 2 and one line; a path or glob that names nothing likewise.
    for argv, message in (([str(folder / '*t.png'), str(folder / 'empty.jpg')], 'none of the 3 images could be read'),
                          ([str(folder / 'text.png')], 'text.png is not an image OpenCV or Pillow can decode'),
                          ([str(tmp_path / 'missing.jpg')], 'missing.jpg: no such file or folder'),
                          ([str(tmp_path / 'nothing*.jpg')], 'nothing*.jpg: matches no file')):
        with pytest.raises(SystemExit) as exit_:
            main(SMALL_ARGS + ['--params', params, '--predict'] + argv)
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and message in err.splitlines()[-1], err
        assert 'Traceback' not in err


@pytest.mark.parametrize('argv, message', [
    (['--predict', 'x.jpg', '--summary'], '--summary, --benchmark and --predict are separate runs'),
    (['--predict', 'x.jpg', '--topk', '0'], '--topk must be positive'),
])
def test_predict_flag_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def _shown(argv, photos, tmp_path, capsys):
    out_json = str(tmp_path / 'p.json')
    code, _, _ = _run(argv + ['--predict'] + photos + ['--topk', '10', '--json', out_json], capsys)
    assert code == 0
    return json.loads(open(out_json).read())['predictions']


def _assert_same(reference, predictions, rel=1e-4):
    for ref, got in zip(reference, predictions):
        assert [c['index'] for c in got['top']] == ref.indices
        assert [c['probability'] for c in got['top']] == pytest.approx(ref.probabilities, rel=rel)


@pytest.fixture(scope='module')
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp('photos')
    return [_save(_photo(seed=s), folder / ('p%d.png' % s), 'PNG') for s in range(3)]


def test_exports_in_both_forms_and_the_store(small, photos, tmp_path, capsys):
    """--model-prefix (the deployment form, --no-deploy's graph) and --pretrained name the Gluon network's classes."""
    from gluon_asymmnet.export import export
    from gluon_asymmnet.model_store import file_hash, register, unregister
    net, params = small
    reference = ga.predict(net, photos, topk=10, preprocess=PRE)
    for deploy in (True, False):
        prefix = str(tmp_path / ('exp-%s' % deploy) / 'small')
        export(net, prefix, input_size=32, formats=('symbol',), deploy=deploy)
        _assert_same(reference, _shown(['--model-prefix', prefix], photos, tmp_path, capsys))   # its record: 32 px
    root = tmp_path / 'store'
    root.mkdir()
    (root / 'predict-test.params').write_bytes(open(params, 'rb').read())
    register({'name': 'predict-test', 'model': 'asymmnet_small', 'kwargs': {'multiplier': 0.35, 'classes': 10},
              'file_name': 'predict-test.params', 'hash': file_hash(str(root / 'predict-test.params')),
              'hash_type': 'sha1', 'url': 'http://127.0.0.1:9/never', 'layout': 'released'})
    try:
        _assert_same(reference, _shown(SMALL_ARGS + ['--pretrained', '--root', str(root)], photos, tmp_path, capsys))
    finally:
        unregister('predict-test')


@pytest.mark.parametrize('backend', ['mxnet', 'mxnet-fused', 'onnxruntime', 'mxnet-int8', 'onnxruntime-int8'])
def test_every_backend(backend, small, photos, tmp_path, capsys):
    """--backend: FP32 backends give the Gluon network's classes; INT8 ones (calibrated on the images) run."""
    net, params = small
    shown = _shown(SMALL_ARGS + ['--params', params, '--backend', backend], photos, tmp_path, capsys)
    if 'int8' not in backend:
        _assert_same(ga.predict(net, photos, topk=10, preprocess=PRE), shown)
    for got in shown:
        probs = [c['probability'] for c in got['top']]
        assert len(probs) == 10 and probs == sorted(probs, reverse=True) and sum(probs) == pytest.approx(1, abs=1e-4)
