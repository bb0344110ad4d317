"""Hostile inputs, round 2 (issue 21): each numbered case of the issue is a test named after it.

Cases 5, 6, 7, 9, 12, 13, 15, 16, 17, 18, 19, 20 and the packer's part of 22.
Commands run in this process where nothing can crash it, else in a
subprocess; every refusal is one line and leaves the files as they were.
"""
import os
import struct
import warnings
import zlib

import cv2
import mxnet as mx
import numpy as np
import pytest

import gluon_asymmnet as ga
from gluon_asymmnet.data import DataError


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
        import threading
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

        self.httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = 'http://127.0.0.1:%d/w.params' % self.httpd.server_address[1]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


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
        child = subprocess.Popen([sys.executable, '-c', code, server.url, str(tmp_path)],
                                 env=dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(
                                     os.path.abspath(__file__)))))
        deadline = time.monotonic() + 60
        while not [n for n in os.listdir(str(tmp_path)) if '.part-' in n] and time.monotonic() < deadline:
            time.sleep(0.1)
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        orphans = [n for n in os.listdir(str(tmp_path)) if '.part-' in n]
        assert len(orphans) == 1
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
