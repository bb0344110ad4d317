"""Hostile inputs, round 2 (issue 21): each numbered case of the issue is a test named after it.

Cases 5, 6, 7, 9, 12, 13, 15, 16, 17, 18, 19, 20 and the packer's part of 22.
Commands run in this process where nothing can crash it, else in a
subprocess; every refusal is one line and leaves the files as they were.
"""
import os
import re
import struct
import warnings
import zlib

import cv2
import mxnet as mx
import numpy as np
import pytest

import gluon_asymmnet as ga
from gluon_asymmnet.data import DataError
from faults import serve_loopback, stop_loopback


def _jpeg(seed, size=16):
    img = np.random.RandomState(seed).randint(0, 256, (size, size, 3)).astype(np.uint8)
    return cv2.imencode('.jpg', img)[1].tobytes()


def _png_bomb(width, height, header_only=False):
    """A PNG of ``width`` x ``height`` black pixels: little on disk, 3 bytes a pixel decoded."""
    def chunk(kind, data):
        return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff)
    head = b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', width, height, 8, 2, 0, 0, 0))
    if header_only:
        return head
    return head + chunk(b'IDAT', zlib.compress(bytes((1 + 3 * width) * height), 1)) + chunk(b'IEND', b'')


def _folder(root, layout):
    """Create ``{relative path: bytes or None (a folder)}`` under ``root``; images by default."""
    for i, (rel, data) in enumerate(sorted(layout.items())):
        path = root / rel
        if data is None:
            path.mkdir(parents=True, exist_ok=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_jpeg(i) if data == 'jpg' else data)
    return root


def _pack(argv, capsys):
    from gluon_asymmnet.pack import main
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err.strip().splitlines()


# -- 5. a prefix whose .rec is a folder ---------------------------------------------------------------

def test_r2_case_05_pack_into_a_prefix_whose_rec_is_a_folder(tmp_path, capsys):
    src = _folder(tmp_path / 'src', {'a/1.jpg': 'jpg', 'b/2.jpg': 'jpg'})
    (tmp_path / 'out.rec').mkdir()
    code, _, err = _pack([src, tmp_path / 'out', '-j', '1'], capsys)
    assert code == 2 and err == ['error: cannot write %s: it is a folder; give another output prefix'
                                 % (tmp_path / 'out.rec')]
    assert sorted(os.listdir(str(tmp_path))) == ['out.rec', 'src'] and os.listdir(str(tmp_path / 'out.rec')) == []


# -- 12. control characters in class folder names ------------------------------------------------------

def test_r2_case_12_a_newline_in_a_class_folder_name_is_refused(tmp_path, capsys):
    src = _folder(tmp_path / 'src', {'cat/1.jpg': 'jpg', 'dog\nsmall/2.jpg': 'jpg', 'emu/3.jpg': 'jpg'})
    code, _, err = _pack([src, tmp_path / 'out', '-j', '1'], capsys)
    assert code == 2 and err == ["error: class folder 'dog\\nsmall' in %s has a control character ('\\n') in its "
                                 "name; rename it (class names are stored one a line)" % src]
    assert sorted(os.listdir(str(tmp_path))) == ['src']
    with pytest.raises(DataError, match='control character'):
        ga.folder_batches(str(src), batch_size=2, input_size=8)
    # Names that need no escaping round-trip, spaces inside and non-ASCII included.
    good = _folder(tmp_path / 'good', {'a b/1.jpg': 'jpg', 'é ñ/2.jpg': 'jpg'})
    assert _pack([good, tmp_path / 'g', '-j', '1'], capsys)[0] == 0
    from gluon_asymmnet.data.loader import record_class_names
    from gluon_asymmnet.pack import read_classes
    assert read_classes(str(tmp_path / 'g.classes.txt')) == ['a b', 'é ñ'] == record_class_names(
        str(tmp_path / 'g.rec'))


# -- 16. decompression bombs ---------------------------------------------------------------------------

def test_r2_case_16_pixel_limit_reads_headers_of_every_format():
    from gluon_asymmnet.data.pixels import image_size
    img = np.random.RandomState(0).randint(0, 256, (20, 30, 3)).astype(np.uint8)
    for ext in ('.jpg', '.png', '.bmp', '.webp', '.tif', '.ppm', '.pfm', '.sr', '.hdr'):
        assert image_size(cv2.imencode(ext, img)[1].tobytes()) == (30, 20), ext
    lossless = cv2.imencode('.webp', img, [cv2.IMWRITE_WEBP_QUALITY, 101])[1].tobytes()
    assert image_size(lossless) == (30, 20) and image_size(cv2.imencode('.pgm', img[..., 0])[1].tobytes()) == (30, 20)
    assert image_size(_png_bomb(30000, 30000, header_only=True)) == (30000, 30000)


def test_r2_case_16_decompression_bombs_are_skipped_and_named(tmp_path, capsys):
    from gluon_asymmnet.data.pixels import check_pixels, ImageTooLarge, set_max_image_pixels
    with pytest.raises(ImageTooLarge, match='^photo.png has 30000 x 30000 = 900000000 pixels, above the limit of '
                                            '89478485 .*; raise it with --max-image-pixels'):
        check_pixels(_png_bomb(30000, 30000, header_only=True), 'photo.png')  # the 875 KB bomb, 2.7 GB decoded
    # The same at a lower limit, cheap to build: 2000 x 2000 pixels above a limit of 1e6.
    bomb = _png_bomb(2000, 2000)
    src = _folder(tmp_path / 'src', {'a/1.jpg': 'jpg', 'a/2.jpg': 'jpg', 'b/3.jpg': 'jpg', 'b/bomb.png': bomb})
    words = 'has 2000 x 2000 = 4000000 pixels, above the limit of 1000000'
    code, out, _ = _pack([src, tmp_path / 'out', '-j', '1', '--max-image-pixels', '1000000'], capsys)
    assert code == 0 and 'packed 3 images of 2 classes' in out
    assert 'left out %s: it %s' % (src / 'b' / 'bomb.png', words) in out
    previous = set_max_image_pixels(10 ** 6)
    try:
        # Training and evaluation batches skip it, naming it, and never decode it.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            batches = ga.folder_batches(str(src), batch_size=4, input_size=8)
            labels = np.concatenate([y.asnumpy() for _, y in batches])
        assert sorted(labels.tolist()) == [0, 0, 1] and batches.skipped == 1
        assert any(('%s %s' % (src / 'b' / 'bomb.png', words)) in str(w.message) for w in caught)
        assert check_pixels(_png_bomb(100, 100, header_only=True)) == (100, 100)
    finally:
        set_max_image_pixels(previous)
    code, out, _ = _pack([src, tmp_path / 'raised', '-j', '1', '--max-image-pixels', '4000000'], capsys)
    assert code == 0 and 'packed 4 images' in out
    # train_imagenet.py --max-image-pixels sets the limit its data workers inherit.
    from gluon_asymmnet.data.pixels import DEFAULT_MAX_IMAGE_PIXELS, max_image_pixels
    from gluon_asymmnet.training import build_data, parse_args
    layout = {'%s/%d.jpg' % (c, i): 'jpg' for c in 'ab' for i in range(5)}
    cfg = parse_args(['--image-folder', str(_folder(tmp_path / 'train', dict(layout, **{'b/bomb.png': bomb}))),
                      '--model', 'asymmnet_small', '--width-scale', '0.35', '--input-size', '16', '--batch-size', '2',
                      '-j', '0', '--save-dir', str(tmp_path / 'run'), '--max-image-pixels', '1000000'])
    try:
        train, _ = build_data(cfg)
        assert max_image_pixels() == 10 ** 6
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            for _ in train:
                pass
        assert any('bomb.png %s' % words in str(w.message) for w in caught)
    finally:
        set_max_image_pixels(previous)
    assert max_image_pixels() == DEFAULT_MAX_IMAGE_PIXELS


# -- 17. image folders --------------------------------------------------------------------------------

def test_r2_case_17_image_folders(tmp_path, capsys):
    from gluon_asymmnet.data.folders import folder_layout
    from gluon_asymmnet.data.sources import list_image_folder
    img = np.random.RandomState(1).randint(0, 256, (16, 16, 3)).astype(np.uint8)
    webp, tiff = (cv2.imencode(ext, img)[1].tobytes() for ext in ('.webp', '.tiff'))
    src = _folder(tmp_path / 'src', {
        'cat/1.jpg': 'jpg', 'cat/nested/deeper/2.jpg': 'jpg', 'cat/x.jpg/3.jpg': 'jpg', 'cat/4.webp': webp,
        'dog/5.tiff': tiff, 'dog/notes.txt': b'not an image', 'dog/.hidden.jpg': b'AppleDouble',
        '.ipynb_checkpoints/6.jpg': 'jpg', '.cache/7.jpg': 'jpg', 'cat/.ipynb_checkpoints/8.jpg': 'jpg'})
    skipped = []
    paths, labels, names = list_image_folder(str(src), skipped=skipped)
    assert names == ['cat', 'dog'] and labels.tolist() == [0, 0, 0, 0, 1]
    assert [os.path.relpath(p, str(src)) for p in paths] == [
        'cat/1.jpg', 'cat/4.webp', 'cat/nested/deeper/2.jpg', 'cat/x.jpg/3.jpg', 'dog/5.tiff']
    assert skipped == [(str(src / 'dog' / 'notes.txt'), 'is not an image format OpenCV reads (.txt)')]
    code, out, _ = _pack([src, tmp_path / 'out', '-j', '1'], capsys)
    assert code == 0 and 'packed 5 images of 2 classes' in out and 'corrupt' not in out
    assert 'left out %s: it is not an image format OpenCV reads (.txt)' % (src / 'dog' / 'notes.txt') in out
    # One class, an empty class, a class whose only image does not decode.
    one = _folder(tmp_path / 'one', {'cat/1.jpg': 'jpg', '.cache/2.jpg': 'jpg'})
    empty = _folder(tmp_path / 'empty', {'cat/1.jpg': 'jpg', 'dog': None, 'emu/3.jpg': 'jpg'})
    dead = _folder(tmp_path / 'dead', {'cat/1.jpg': 'jpg', 'dog/2.jpg': b'<html>'})
    cases = [(one, 'image folder %s has one class folder (cat); training a classifier needs at least 2 classes, each in '
                   'its own subfolder' % one),
             (empty, 'class folder %s holds no images (' % (empty / 'dog')),
             (dead, 'class dog: none of its 1 images could be packed (%s is not a decodable image), so it would be a '
                    'class without examples' % (dead / 'dog' / '2.jpg'))]
    for folder, message in cases:
        code, _, err = _pack([folder, tmp_path / 'x', '-j', '1'], capsys)
        assert code == 2 and len(err) == 1 and err[0].startswith('error: ' + message), err
    assert not [n for n in os.listdir(str(tmp_path)) if n.startswith('x')]
    with pytest.raises(DataError, match='one class folder'):
        ga.get_data_loaders(image_folder=str(one), batch_size=1, input_size=8)
    # train/ and val/ make a split only when both hold class folders; a class may be named train.
    classes_named_train = _folder(tmp_path / 'named', {'train/1.jpg': 'jpg', 'val/2.jpg': 'jpg', 'zoo/3.jpg': 'jpg'})
    assert folder_layout(str(classes_named_train)) == ('single', str(classes_named_train), None)
    split = _folder(tmp_path / 'split', {'train/a/1.jpg': 'jpg', 'train/b/2.jpg': 'jpg', 'val/a/3.jpg': 'jpg'})
    assert folder_layout(str(split))[0] == 'split'
    loose = _folder(tmp_path / 'loose', {'train/a/1.jpg': 'jpg', 'train/b/2.jpg': 'jpg', 'val/3.jpg': 'jpg'})
    with pytest.raises(DataError, match='holds class folders but .*val does not'):
        folder_layout(str(loose))


# -- 22. the packer's worker count -----------------------------------------------------------------------

def test_r2_case_22_packer_worker_count(tmp_path, capsys):
    src = _folder(tmp_path / 'src', {'a/1.jpg': 'jpg', 'b/2.jpg': 'jpg'})
    code, _, err = _pack([src, tmp_path / 'out', '-j', '-2'], capsys)
    assert code == 2 and err == ['error: -j/--num-workers must be >= 0 (0 or 1: no worker processes), got -2']
    assert sorted(os.listdir(str(tmp_path))) == ['src']
    from gluon_asymmnet.pack import worker_count
    cpus = os.cpu_count()
    assert worker_count(1000) == (4 * cpus, '-j 1000 capped at %d worker processes (4 per CPU, %d CPUs): more only '
                                            'cost memory and start-up time' % (4 * cpus, cpus))
    assert worker_count(1000, tasks=3) == (3, worker_count(1000)[1]) and worker_count(None) == (cpus, None)
    code, out, err = _pack([src, tmp_path / 'out', '-j', '1000'], capsys)
    assert code == 0 and err == ['warning: ' + worker_count(1000)[1]] and 'packed 2 images' in out


# -- 7. model-store downloads: size limit, progress deadline, no .part left ----------------------------

class _Loopback(object):
    """A loopback HTTP server whose every GET sends ``body(wfile)``; it stops on its own after ``cap`` seconds."""

    def __init__(self, body, cap=20.0):
        import http.server
        import time

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                start = time.monotonic()
                try:
                    body(self, lambda: time.monotonic() - start < cap)
                except OSError:  # the client hung up
                    pass

            def log_message(self, *args):
                pass

        self.httpd = serve_loopback(Handler)
        self.url = 'http://127.0.0.1:%d/w.params' % self.httpd.server_address[1]

    def close(self):
        stop_loopback(self.httpd)


def _trickle(handler, going):
    import time
    handler.send_response(200)
    handler.send_header('Content-Length', '1000000')
    handler.end_headers()
    while going():
        handler.wfile.write(b'x')
        handler.wfile.flush()
        time.sleep(0.05)


def _forever(handler, going):
    handler.send_response(200)
    handler.end_headers()
    block = b'\0' * (1 << 16)
    while going():
        handler.wfile.write(block)


def _announces_too_much(handler, going):
    handler.send_response(200)
    handler.send_header('Content-Length', str(1 << 40))
    handler.end_headers()


@pytest.fixture
def store_entry(monkeypatch):
    from gluon_asymmnet import model_store as ms
    for var in ('http_proxy', 'HTTP_PROXY', 'https_proxy', 'HTTPS_PROXY', 'all_proxy', 'ALL_PROXY',
                'MXNET_GLUON_REPO', 'MXNET_HOME'):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv('NO_PROXY', '127.0.0.1,localhost')
    names = []

    def register(url):
        names.append('r2-case-7-%d' % len(names))
        return ms.register(dict(name=names[-1], model='asymmnet_small', kwargs=dict(multiplier=0.35, classes=10),
                                file_name='r2.params', hash='0' * 40, hash_type='sha1', url=url))
    yield register
    for name in names:
        ms.unregister(name)


@pytest.mark.parametrize('body, words', [
    (_trickle, 'the download stalled: '),
    (_forever, 'sent more than'),
    (_announces_too_much, 'announces 1099511627776 bytes'),
])
def test_r2_case_07_downloads_have_a_size_limit_and_a_progress_deadline(tmp_path, store_entry, body, words):
    import time
    from gluon_asymmnet import model_store as ms
    server = _Loopback(body)
    try:
        entry = store_entry(server.url)
        limit, values = ms.size_limit(entry)
        assert 4 * values < limit < 8 * values + (2 << 20)
        start = time.monotonic()
        with pytest.raises(ms.ModelStoreError) as err:
            ms.get_model_file(entry, root=str(tmp_path), stall_timeout=1)
        elapsed = time.monotonic() - start
    finally:
        server.close()
    message = str(err.value)
    assert words in message and '\n' not in message and elapsed < 10, (elapsed, message)
    if body is _forever:
        assert 'more than a parameter file of asymmnet_small(classes=10, multiplier=0.35) can hold' in message
    assert [n for n in os.listdir(str(tmp_path)) if '.part' in n] == []


def test_r2_case_07_a_killed_downloads_part_file_is_removed_by_the_next(tmp_path, store_entry):
    import signal
    import subprocess
    import sys
    import time
    from gluon_asymmnet import model_store as ms
    server = _Loopback(_trickle)
    try:
        entry = store_entry(server.url)
        code = ('import sys; from gluon_asymmnet import model_store as ms; ms.register(dict(name="k", '
                'model="asymmnet_small", kwargs=dict(multiplier=0.35, classes=10), file_name="r2.params", '
                'hash="0" * 40, hash_type="sha1", url=sys.argv[1])); ms.get_model_file("k", root=sys.argv[2])')
        env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        child = subprocess.Popen([sys.executable, '-c', code, server.url, str(tmp_path)], env=env)
        deadline = time.monotonic() + 60
        while not [n for n in os.listdir(str(tmp_path)) if '.part-' in n] and time.monotonic() < deadline:
            time.sleep(0.1)
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        orphans = [n for n in os.listdir(str(tmp_path)) if '.part-' in n]
        assert len(orphans) == 1
        # SIGTERM (a timeout's kill) removes the download's own .part before the process ends.
        term = tmp_path / 'term'
        child = subprocess.Popen([sys.executable, '-c', code, server.url, str(term)], env=env)
        deadline = time.monotonic() + 60
        while not (term.is_dir() and [n for n in os.listdir(str(term)) if '.part-' in n]) and \
                time.monotonic() < deadline:
            time.sleep(0.1)
        child.send_signal(signal.SIGTERM)
        assert child.wait(10) == 143
        assert [n for n in os.listdir(str(tmp_path / 'term')) if '.part' in n] == []
        with pytest.raises(ms.ModelStoreError, match='stalled'):
            ms.get_model_file(entry, root=str(tmp_path), stall_timeout=0.5)
    finally:
        server.close()
    assert [n for n in os.listdir(str(tmp_path)) if '.part' in n] == []


# -- 19. the environment: MXNET_GLUON_REPO ---------------------------------------------------------------

def test_r2_case_19_a_malformed_mirror_is_named_as_the_variable(tmp_path, monkeypatch, capsys):
    from gluon_asymmnet.evaluation import main
    monkeypatch.setenv('MXNET_GLUON_REPO', 'http://[::1')
    with pytest.raises(SystemExit) as exit:
        main(['--model', 'mobilenetv3_small', '--classes', '1000', '--pretrained', '--root', str(tmp_path),
              '--dataset', 'demo', '--no-progress'])
    lines = [l for l in capsys.readouterr().err.strip().splitlines() if 'OpenMP thread' not in l]
    assert exit.value.code == 2 and lines == [
        "error: the environment variable MXNET_GLUON_REPO='http://[::1' is not a mirror URL (Invalid IPv6 URL); "
        "unset it, or give an http(s):// URL or a folder"]
    monkeypatch.setenv('MXNET_GLUON_REPO', 'ftp:/x')
    with pytest.raises(SystemExit):
        main(['--model', 'mobilenetv3_small', '--classes', '1000', '--pretrained', '--root', str(tmp_path),
              '--dataset', 'demo', '--no-progress'])
    assert "MXNET_GLUON_REPO='ftp:/x' is not a mirror URL (unknown scheme 'ftp')" in capsys.readouterr().err


def test_r2_case_19_refetching_names_the_url_actually_used(tmp_path, store_entry, monkeypatch, caplog):
    import logging
    from gluon_asymmnet import model_store as ms
    mirror = tmp_path / 'mirror' / 'gluon' / 'models'
    mirror.mkdir(parents=True)
    (mirror / 'w.params').write_bytes(b'not it')
    entry = store_entry('https://example.invalid/w.params')
    monkeypatch.setenv('MXNET_GLUON_REPO', str(tmp_path / 'mirror'))
    (tmp_path / 'store').mkdir()
    (tmp_path / 'store' / 'r2.params').write_bytes(b'damaged')
    with caplog.at_level(logging.WARNING, logger='gluon_asymmnet.model_store'):
        with pytest.raises(ms.ModelStoreError):
            ms.get_model_file(entry, root=str(tmp_path / 'store'))
    assert 'fetching it again from %s' % (mirror / 'w.params') in caplog.text
    assert 'example.invalid' not in caplog.text


# -- 18. special files given as parameters -----------------------------------------------------------------

def test_r2_case_18_params_that_are_special_files_say_what_they_are(tmp_path, capsys):
    from gluon_asymmnet.checkpoint import CheckpointError
    from gluon_asymmnet.evaluation import main
    fifo = str(tmp_path / 'pipe.params')
    os.mkfifo(fifo)
    (tmp_path / 'folder.params').mkdir()
    cases = [(fifo, 'is a named pipe (FIFO)'), (str(tmp_path / 'folder.params'), 'is a folder'),
             ('/dev/zero', 'is a character device')]
    for path, what in cases:
        with pytest.raises(SystemExit) as exit:
            main(['--model', 'asymmnet_small', '--width-scale', '0.35', '--classes', '10', '--params', path,
                  '--dataset', 'demo', '--no-progress'])
        lines = [l for l in capsys.readouterr().err.strip().splitlines() if 'OpenMP thread' not in l]
        assert exit.value.code == 2 and lines == ['error: %s %s, not a parameter file' % (path, what)]
        net = ga.get_model('asymmnet_small', multiplier=0.35, classes=10)
        with pytest.raises(CheckpointError, match='^%s %s' % (path, what.replace('(', r'\(').replace(')', r'\)'))):
            ga.load_checkpoint(net, path)
        with pytest.raises(ValueError, match=what.replace('(', r'\(').replace(')', r'\)')):
            ga.get_model('asymmnet_small', multiplier=0.35, classes=10, pretrained=path)
    with pytest.raises(CheckpointError, match='no such parameter file'):
        ga.load_checkpoint(net, str(tmp_path / 'missing.params'))


# -- 20. misused networks: the input checked at the top-level call ------------------------------------------

def test_r2_case_20_wrong_input_is_one_line_naming_what_was_expected(tmp_path):
    net = ga.get_model('asymmnet_small', multiplier=0.35, classes=10)
    net.initialize()
    good = mx.nd.ones((2, 3, 32, 32))
    expected = net(good).asnumpy()
    cases = [(mx.nd.ones((2, 32, 32, 3)), 'got float32 of shape (2, 32, 32, 3); channels last?'),
             (mx.nd.ones((32, 32)), 'got float32 of shape (32, 32)'),
             (mx.nd.ones((3, 32, 32)), 'got float32 of shape (3, 32, 32); one image?'),
             (mx.nd.ones((2, 3, 32, 32), dtype='uint8'), 'got uint8 of shape (2, 3, 32, 32); integer pixels?'),
             (mx.nd.ones((2, 3, 32, 32), dtype='int32'), 'got int32 of shape (2, 3, 32, 32); integer pixels?'),
             (mx.nd.ones((2, 1, 32, 32)), 'got float32 of shape (2, 1, 32, 32)')]
    for hybridize in (False, True):
        if hybridize:
            net.hybridize()
        for x, words in cases:
            with pytest.raises(ValueError) as err:
                net(x)
            message = str(err.value)
            assert message.startswith('AsymmNet takes a float32 batch of shape (N, 3, H, W), ' + words), message
            assert '\n' not in message
        assert np.array_equal(net(good).asnumpy(), expected)
    v2 = ga.get_model('mobilenetv2', multiplier=0.25, classes=10)
    v2.initialize()
    with pytest.raises(ValueError, match=r'^MobileNetV2 takes a float32 batch'):
        v2(mx.nd.ones((1, 32, 32, 3)))
    # The pose and detection models check their batch too (their backbone's blocks are inside, not on top).
    for name, cls in (('mobile_pose_asymmnet_small', 'MobilePose'), ('center_net_asymmnet_small_duc_voc', 'CenterNet'),
                      ('yolo3_asymmnet_small_voc', 'YOLOV3')):
        down = ga.get_model(name, multiplier=0.35, pretrained_base=False)
        down.initialize()
        with pytest.raises(ValueError, match=r'^%s takes a float32 batch .*channels last\?' % cls):
            down(mx.nd.ones((1, 64, 64, 3)))
    if mx.context.num_gpus() == 0:
        net.cast('float16')
        for x in (good.astype('float16'), good):
            with pytest.raises(ValueError) as err:
                net(x)
            assert str(err.value) in (
                "AsymmNet was cast to float16, which MXNet 1.9.1 cannot run on the CPU (cpu(0)); cast it back with "
                "net.cast('float32'), or run it on a GPU",
                'AsymmNet takes a float16 batch of shape (N, 3, H, W), got float32 of shape (2, 3, 32, 32); convert '
                "it: x.astype('float16')")
        from gluon_asymmnet.export import export
        with pytest.raises(ValueError, match=r"^export takes a float32 network; this one was cast to float16: "
                                             r"net.cast\('float32'\) first$"):
            export(net, str(tmp_path / 'm'), 32)
        net.cast('float32')
        assert np.allclose(net(good).asnumpy(), expected, atol=1e-2)


# -- 6. a read-only MXNET_HOME and the fused CPU operators ------------------------------------------------

_FASTOPS_PLACES = '''
import json, os, sys
from gluon_asymmnet import fastops
os.environ['XDG_CACHE_HOME'] = sys.argv[2]
places = {'writable cache': fastops._build_path(None), 'fallbacks': fastops._fallbacks()}
# Nothing writable: the cache folder on the read-only file system, no temporary folder either.
fastops._fallbacks = lambda: [os.path.join(os.environ['MXNET_HOME'], 'cache')]
try:
    fastops._build_path(None)
except fastops.FastOpsError as err:
    places['none'] = str(err)
import warnings
from gluon_asymmnet.evaluation.cli import main
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter('always')
    places['eval exit'] = main(['--model', 'asymmnet_small', '--width-scale', '0.35', '--benchmark', '--backends',
                                'mxnet-fused', '--bench-input-size', '32', '--warmup', '0', '--repeats', '1',
                                '--no-progress'])
places['warnings'] = [str(w.message) for w in caught if 'fastops' in str(w.message)]
print(json.dumps(places))
'''


@pytest.mark.skipif(not hasattr(os, 'getuid'), reason='POSIX')
def test_r2_case_06_read_only_mxnet_home_builds_the_fused_operators_elsewhere_or_names_the_variable(tmp_path):
    import json
    from faults import needs_mounts, python_with_mount
    if needs_mounts.args[0]:
        pytest.skip(needs_mounts.kwargs['reason'])
    home = tmp_path / 'home'
    home.mkdir()
    run = python_with_mount(home, 'ro', 'import os, sys; os.environ["MXNET_HOME"] = sys.argv[1]\n' + _FASTOPS_PLACES,
                            home, tmp_path / 'cache')
    assert run.returncode == 0, run.stderr[-2000:]
    places = json.loads(run.stdout.strip().splitlines()[-1])
    assert places['fallbacks'][0] == str(tmp_path / 'cache' / 'gluon_asymmnet')
    assert os.path.dirname(places['writable cache']) in places['fallbacks']  # built (or found) outside MXNET_HOME
    assert places['none'].startswith('cannot build fastops.cc: no folder to build it in can be written (%s is on a '
                                     'read-only file system' % home)
    assert places['none'].endswith('set MXNET_HOME (or XDG_CACHE_HOME) to a folder you can write')
    # eval.py --benchmark runs the fused backend with MXNet's own operators, saying why and what to set.
    assert places['eval exit'] == 0 and 'Traceback' not in run.stderr
    assert set(places['warnings']) == {"gluon_asymmnet.fastops unavailable, MXNet backends run MXNet's slower element-wise "
                                  "operators: " + places['none']}


# -- 9. a stopped worker under launch.py -n 2 -s 1 -----------------------------------------------------------

_WORKER = '''
import os, signal, sys, time
try:
    os.close(os.open(sys.argv[1], os.O_CREAT | os.O_EXCL))
except FileExistsError:  # the other worker: keeps printing, as a worker waiting on its peer would keep its log
    while True:
        print('still here', flush=True)
        time.sleep(0.3)
print('stopping myself', flush=True)
os.kill(os.getpid(), signal.SIGSTOP)
'''


def test_r2_case_09_a_stopped_worker_stops_the_job_naming_it(tmp_path, capsys):
    import sys
    import time
    import launcher
    start = time.monotonic()
    code = launcher.main(['-n', '2', '-s', '1', '--liveness-timeout', '3', '--grace', '2', '--timeout', '120', '--',
                          sys.executable, '-c', _WORKER, str(tmp_path / 'first')])
    elapsed = time.monotonic() - start
    out = capsys.readouterr().out
    said = [l for l in out.splitlines() if l.startswith('[launch]')]
    assert code == 124 and len(said) == 1, out[-3000:]
    assert re.match(r'^\[launch\] worker \d \(pid \d+\) has been stopped \(SIGSTOP, Ctrl-Z or a debugger\) for 3s and '
                    r'the others wait for it: stopping all processes$', said[0]), said
    assert elapsed < 60, elapsed  # the 120 s timeout was not what stopped it
    # A job where nothing prints or computes at all is stopped too, naming the process silent longest.
    from launcher import Process, run_processes
    quiet = [Process('worker %d' % i, 'worker', None, [sys.executable, '-c', 'import time; time.sleep(600)'], {})
             for i in range(2)]
    output = __import__('io').StringIO()
    assert run_processes(quiet, grace=2, output=output, liveness_timeout=2) == 124
    assert re.match(r'^\[launch\] no process printed or computed for 2s; worker \d \(pid \d+\) has been silent longest',
                    output.getvalue()), output.getvalue()


# -- 13. exports record their input size and batch size ------------------------------------------------------

def _eval(argv, capsys):
    from gluon_asymmnet.evaluation import main
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exit:
        code = exit.code
    lines = [l for l in capsys.readouterr().err.strip().splitlines() if 'OpenMP thread' not in l]
    return code, lines


@pytest.fixture(scope='module')
def small_export(tmp_path_factory):
    from conftest import randomized
    from gluon_asymmnet.export import export
    folder = tmp_path_factory.mktemp('exports')
    net = randomized('asymmnet_small', dict(multiplier=0.35, classes=10), seed=2)
    files = export(net, str(folder / 'at32'), 32, formats=('symbol',))
    fixed = export(net, str(folder / 'fixed2'), 32, formats=('symbol',), batch_size=2)
    return dict(folder=folder, net=net, files=files, fixed=fixed)


def test_r2_case_13_eval_uses_the_recorded_input_and_batch_size_or_refuses(small_export, tmp_path, capsys):
    import json
    from gluon_asymmnet.export_record import read_record
    folder = small_export['folder']
    record = read_record(str(folder / 'at32'))
    assert record['input_size'] == (32, 32) and record['batch_size'] is None and not record['preprocess']
    assert read_record(str(folder / 'fixed2'))['batch_size'] == 2
    images = _folder(tmp_path / 'images', {'a/1.jpg': 'jpg', 'a/2.jpg': 'jpg', 'b/3.jpg': 'jpg'})
    code, lines = _eval(['--model-prefix', folder / 'at32', '--image-folder', images, '--no-progress',
                         '--json', tmp_path / 'r.json'], capsys)
    assert code == 0, lines
    assert json.loads((tmp_path / 'r.json').read_text())['data']['input_size'] == 32  # not the default 224
    code, lines = _eval(['--model-prefix', folder / 'at32', '--image-folder', images, '--no-progress',
                         '--input-size', '224'], capsys)
    assert code == 2 and lines == ['error: --input-size 224: %s was exported for input 32x32 (%s-export.json); drop '
                                   '--input-size, or export again at 224' % ((folder / 'at32',) * 2)]
    code, lines = _eval(['--model-prefix', folder / 'fixed2', '--dataset', 'demo', '--no-progress',
                         '--batch-size', '4'], capsys)
    assert code == 2 and lines == ['error: --batch-size 4: %s was exported for a fixed batch of 2 (its deployment '
                                   'form, %s-export.json); drop --batch-size, or export again for batch 4'
                                   % ((folder / 'fixed2',) * 2)]
    code, lines = _eval(['--model-prefix', folder / 'fixed2', '--dataset', 'demo', '--no-progress'], capsys)
    assert code == 0, lines


# -- 15. two exports to one prefix ------------------------------------------------------------------------

def test_r2_case_15_exports_to_one_folder_take_turns_and_mixed_files_are_refused(small_export, tmp_path, capsys):
    import shutil
    import threading
    from conftest import randomized
    from gluon_asymmnet.export import export
    from gluon_asymmnet.export_record import prefix_lock, read_record, check_files
    prefix = str(tmp_path / 'm')
    first = export(small_export['net'], prefix, 32, formats=('symbol',))
    before = {k: open(p, 'rb').read() for k, p in first.items()}
    other = randomized('asymmnet_small', dict(multiplier=0.35, classes=10), seed=3)
    done = threading.Event()
    # While another export holds the folder, this one computes and checks its files but renames none.
    with prefix_lock(str(tmp_path)):
        worker = threading.Thread(target=lambda: (export(other, prefix, 32, formats=('symbol',)), done.set()))
        worker.start()
        assert not done.wait(3)
        assert {k: open(p, 'rb').read() for k, p in first.items()} == before
    worker.join(60)
    assert done.is_set()
    record = read_record(prefix)
    check_files(prefix, record, {'symbol': first['symbol'], 'params': first['params']})  # all of the second export
    assert open(first['params'], 'rb').read() != before['params']
    # A set mixed anyway (a parameter file copied over from another export) is refused by name.
    shutil.copyfile(small_export['files']['params'], first['params'])
    code, lines = _eval(['--model-prefix', prefix, '--dataset', 'demo', '--no-progress'], capsys)
    assert code == 2 and lines == [
        'error: %s is not the params file of the export recorded in %s-export.json (another export to the same '
        'prefix, or a file copied in); its files do not belong together: export again' % (first['params'], prefix)]


def test_r2_case_13_load_checkpoints_hint_names_the_recorded_sizes(small_export):
    from gluon_asymmnet.checkpoint import CheckpointError
    net = ga.get_model('asymmnet_small', multiplier=0.35, classes=10)
    prefix = str(small_export['folder'] / 'fixed2')
    with pytest.raises(CheckpointError) as err:
        ga.load_checkpoint(net, small_export['fixed']['params'])
    assert ('eval.py --model-prefix); %s-export.json records input 32x32, batch 2: eval.py --model-prefix %s uses '
            'them; for a file that loads' % (prefix, prefix)) in str(err.value)


def test_r2_case_12_pack_arrays_refuses_class_names_that_do_not_round_trip(tmp_path):
    from gluon_asymmnet.pack import pack_arrays
    for names in (['cat', 'dog\nsmall'], ['cat', '  '], ['cat', 'tab\there']):
        with pytest.raises(ValueError, match='cannot be stored one a line in classes.txt'):
            pack_arrays(np.zeros((2, 8, 8, 3), np.uint8), [0, 1], str(tmp_path / 'x'), classes=names)
    assert os.listdir(str(tmp_path)) == []
    info = pack_arrays(np.zeros((2, 8, 8, 3), np.uint8), [0, 1], str(tmp_path / 'y'), classes=[' lead', 'trail '])
    from gluon_asymmnet.pack import read_classes
    assert read_classes(info['classes_file']) == [' lead', 'trail ']
