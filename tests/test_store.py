"""The model store: entries as data, hash-verified cache, downloads from loopback HTTP and disk, offline messages."""
import hashlib
import http.server
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
import zipfile

import filelock
import mxnet as mx
import numpy as np
import pytest

import gluon_asymmnet as ga
from faults import needs_mounts, python_with_mount, serve_loopback, stop_loopback
from gluon_asymmnet import model_store as ms

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = dict(multiplier=0.5, classes=10)
# Each process imports MXNet (about 2 CPU-seconds): two are enough to race for the lock.
PROCS = 2


class Server:
    """A loopback HTTP server for byte strings, counting requests; ``delay`` slows each 64 KiB chunk."""

    def __init__(self):
        self.files, self.hits, self.delay = {}, {}, 0.0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            timeout = 30

            def do_GET(self):
                server.hits[self.path] = server.hits.get(self.path, 0) + 1
                data = server.files.get(self.path)
                if data is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header('Content-Length', str(len(data)))
                self.end_headers()
                for i in range(0, len(data), 1 << 16):
                    self.wfile.write(data[i:i + (1 << 16)])
                    time.sleep(server.delay)

            def log_message(self, *args):
                pass

        self.httpd = serve_loopback(Handler)

    def url(self, path):
        return 'http://127.0.0.1:%d%s' % (self.httpd.server_address[1], path)

    def close(self):
        stop_loopback(self.httpd)


@pytest.fixture
def server(monkeypatch):
    for var in ('http_proxy', 'HTTP_PROXY', 'https_proxy', 'HTTPS_PROXY', 'all_proxy', 'ALL_PROXY'):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv('NO_PROXY', '127.0.0.1,localhost')
    s = Server()
    yield s
    s.close()


@pytest.fixture(autouse=True)
def no_mxnet_home(monkeypatch):
    monkeypatch.delenv('MXNET_HOME', raising=False)


@pytest.fixture(scope='module')
def payload(tmp_path_factory):
    """A small AsymmNet's parameter file: its bytes, path, hashes and outputs."""
    net = ga.get_model('asymmnet_small', **SMALL)
    mx.random.seed(3)
    net.initialize(mx.init.Xavier(magnitude=2))
    path = str(tmp_path_factory.mktemp('payload') / 'small.params')
    net.save_parameters(path)
    data = open(path, 'rb').read()
    x = mx.nd.array(np.random.RandomState(0).uniform(-1, 1, (1, 3, 64, 64)))
    return dict(data=data, path=path, sha1=hashlib.sha1(data).hexdigest(),
                blob=hashlib.sha1(b'blob %d\0' % len(data) + data).hexdigest(), x=x, out=net(x).asnumpy())


@pytest.fixture
def entries():
    """Register temporary store entries; removed afterwards."""
    names = []

    def add(**fields):
        fields.setdefault('name', 'test-entry-%d' % len(names))
        fields.setdefault('model', 'asymmnet_small')
        fields.setdefault('kwargs', dict(SMALL))
        fields.setdefault('file_name', 'asymmnet_small-test.params')
        fields.setdefault('hash_type', 'sha1')
        fields.setdefault('layout', 'released')
        names.append(fields['name'])
        return ms.register(fields)
    yield add
    for n in names:
        ms.unregister(n)


def closed_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def leftovers(folder):
    return sorted(n for n in os.listdir(folder) if '.part-' in n)


def test_published_entries():
    from gluoncv.model_zoo import model_store as gcv
    released = ms.find_entry('asymmnet_large', dict(multiplier=1.0, asymmrate=1, shuffle_groups=0, classes=1000))
    assert released.file_name == '0.7542-imagenet-modifiedv3-358-best.params'
    assert (released.hash, released.hash_type) == ('a2ee7b4f3161cd32595a67c9ec9c64764b914f00', 'git-blob')
    assert released.url.startswith('https://raw.githubusercontent.com/Spark001/AsymmNet/')
    assert released.url.endswith('/checkpoints/' + released.file_name)
    assert (released.top1, released.top5, released.layout) == (75.42, 92.51, 'released')
    for size, top in [('large', (75.32, 92.30)), ('small', (67.72, 87.51))]:
        e = ms.find_entry('mobilenetv3_' + size, dict(multiplier=1.0, classes=1000))
        name = 'mobilenetv3_' + size
        assert (e.hash, e.hash_type, e.layout) == (gcv._model_sha1[name], 'sha1', 'gluoncv')
        assert e.file_name == '%s-%s.params' % (name, gcv.short_hash(name))
        assert e.url == gcv._url_format.format(repo_url=gcv.apache_repo_url, file_name=e.file_name[:-7])
        assert e.archive == 'zip' and (e.top1, e.top5) == top
    assert ms.pretrained_model_list() == ['asymmnet_large', 'mobilenetv2', 'mobilenetv3_large', 'mobilenetv3_small']


def test_file_hash_forms(payload):
    assert ms.file_hash(payload['path']) == payload['sha1']
    assert ms.file_hash(payload['path'], 'git-blob') == payload['blob']
    git = subprocess.run(['git', 'hash-object', payload['path']], capture_output=True, text=True)
    if git.returncode == 0:
        assert git.stdout.strip() == payload['blob']


def test_miss_downloads_then_hit(server, payload, entries, tmp_path):
    server.files['/w.params'] = payload['data']
    entry = entries(hash=payload['blob'], hash_type='git-blob', url=server.url('/w.params'))
    root = str(tmp_path / 'store')
    path = ms.get_model_file(entry, root=root)
    assert path == os.path.join(root, entry.file_name)
    assert open(path, 'rb').read() == payload['data'] and server.hits == {'/w.params': 1}
    assert ms.get_model_file(entry.name, root=root) == path
    net = ga.get_model('asymmnet_small', pretrained=True, root=root, **SMALL)
    assert server.hits == {'/w.params': 1}
    assert np.array_equal(net(payload['x']).asnumpy(), payload['out'])
    assert leftovers(root) == []


def test_pretrained_by_hash_prefix_and_by_path(server, payload, entries, tmp_path):
    server.files['/w.params'] = payload['data']
    entries(hash=payload['sha1'], url=server.url('/w.params'))
    net = ga.get_model('asymmnet_small', pretrained=payload['sha1'][:8].upper(), root=str(tmp_path), **SMALL)
    assert np.array_equal(net(payload['x']).asnumpy(), payload['out'])
    local = ga.get_model('asymmnet_small', pretrained=payload['path'], **SMALL)
    assert np.array_equal(local(payload['x']).asnumpy(), payload['out'])
    assert server.hits == {'/w.params': 1}


@pytest.mark.parametrize('form', ['path', 'file-url'])
def test_source_on_disk(payload, entries, tmp_path, form):
    url = payload['path'] if form == 'path' else 'file://' + payload['path']
    entry = entries(hash=payload['sha1'], url=url)
    path = ms.get_model_file(entry, root=str(tmp_path))
    assert ms.file_hash(path) == payload['sha1']


def test_zip_archive_like_gluoncv(server, payload, entries, tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, 'w') as zf:
        zf.writestr('asymmnet_small-test.params', payload['data'])
    server.files['/w.zip'] = buf.getvalue()
    entry = entries(hash=payload['sha1'], url=server.url('/w.zip'), archive='zip', layout='released')
    path = ms.get_model_file(entry, root=str(tmp_path))
    assert open(path, 'rb').read() == payload['data']
    assert sorted(os.listdir(str(tmp_path))) == ['asymmnet_small-test.params', 'asymmnet_small-test.params.lock']


def test_hash_mismatch_is_refused_and_not_kept(server, payload, entries, tmp_path):
    server.files['/w.params'] = payload['data']
    wrong = hashlib.sha1(b'something else').hexdigest()
    entry = entries(hash=wrong, url=server.url('/w.params'))
    with pytest.raises(ms.ModelStoreError) as err:
        ms.get_model_file(entry, root=str(tmp_path))
    message = str(err.value)
    assert wrong in message and payload['sha1'] in message and entry.url in message
    assert not os.path.exists(str(tmp_path / entry.file_name))
    assert leftovers(str(tmp_path)) == []


def test_damaged_cached_file_is_fetched_again(server, payload, entries, tmp_path):
    server.files['/w.params'] = payload['data']
    entry = entries(hash=payload['sha1'], url=server.url('/w.params'))
    target = tmp_path / entry.file_name
    target.write_bytes(payload['data'][:1000])
    assert ms.get_model_file(entry, root=str(tmp_path)) == str(target)
    assert target.read_bytes() == payload['data'] and server.hits == {'/w.params': 1}


def test_damaged_cached_file_offline(payload, entries, tmp_path):
    entry = entries(hash=payload['sha1'], url='http://127.0.0.1:%d/w.params' % closed_port())
    target = tmp_path / entry.file_name
    target.write_bytes(b'not it')
    with pytest.raises(ms.ModelStoreError, match='has sha1 %s and is not used' % hashlib.sha1(b'not it').hexdigest()):
        ms.get_model_file(entry, root=str(tmp_path))
    assert target.read_bytes() == b'not it'


@pytest.mark.parametrize('status', ['refused', '404'])
def test_unreachable_source_says_where_to_put_the_file(server, entries, tmp_path, status):
    url = server.url('/missing.params') if status == '404' else 'http://127.0.0.1:%d/w.params' % closed_port()
    entry = entries(hash='0' * 40, url=url)
    start = time.time()
    with pytest.raises(ms.ModelStoreError) as err:
        ms.get_model_file(entry, root=str(tmp_path), timeout=10)
    assert time.time() - start < 10
    message = str(err.value)
    for words in (url, str(tmp_path / entry.file_name), 'sha1 must be ' + '0' * 40, 'sha1sum'):
        assert words in message, message
    assert ('404' in message) if status == '404' else ('Connection' in message)
    assert not os.path.exists(str(tmp_path / entry.file_name)) and leftovers(str(tmp_path)) == []


def test_released_checkpoint_offline_message(tmp_path, monkeypatch):
    """What a user without network access reads for pretrained=True (the real entry, its URL unreachable)."""
    real = ms.find_entry('asymmnet_large')
    offline = real._replace(url='http://127.0.0.1:%d/%s' % (closed_port(), real.file_name))
    monkeypatch.setitem(ms._ENTRIES, real.name, offline)
    monkeypatch.setenv('MXNET_HOME', str(tmp_path / 'home'))
    with pytest.raises(ms.ModelStoreError) as err:
        ga.get_model('asymmnet_large', pretrained=True)
    message = str(err.value)
    where = os.path.join(str(tmp_path / 'home'), 'models', '0.7542-imagenet-modifiedv3-358-best.params')
    assert "put it at %s" % where in message
    assert 'git blob id must be a2ee7b4f3161cd32595a67c9ec9c64764b914f00' in message
    assert 'git hash-object' in message


def test_mxnet_home_and_explicit_root(payload, entries, tmp_path, monkeypatch):
    entry = entries(hash=payload['sha1'], url=payload['path'])
    monkeypatch.setenv('MXNET_HOME', str(tmp_path / 'home'))
    assert ms.get_model_file(entry) == os.path.join(str(tmp_path / 'home'), 'models', entry.file_name)
    assert ms.get_model_file(entry, root=str(tmp_path / 'mine')) == str(tmp_path / 'mine' / entry.file_name)
    monkeypatch.delenv('MXNET_HOME')
    assert ms.resolve_root() == os.path.expanduser(os.path.join('~', '.mxnet', 'models'))


def test_concurrent_downloads_threads(server, payload, entries, tmp_path):
    server.files['/w.params'] = payload['data']
    server.delay = 1.0 / (len(payload['data']) >> 16)  # about one second per download
    entry = entries(hash=payload['sha1'], url=server.url('/w.params'))
    root = str(tmp_path)
    final = os.path.join(root, entry.file_name)
    seen, results, errors, done = [], [], [], threading.Event()

    def watch():
        while not done.is_set():
            if os.path.exists(final):
                seen.append(ms.file_hash(final))
            time.sleep(0.01)

    def fetch():
        try:
            results.append(ms.get_model_file(entry, root=root))
        except Exception as err:  # reported below
            errors.append(err)

    watcher = threading.Thread(target=watch)
    watcher.start()
    workers = [threading.Thread(target=fetch) for _ in range(6)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    done.set()
    watcher.join(10)
    assert errors == [] and results == [final] * 6
    assert server.hits == {'/w.params': 1}
    assert seen and set(seen) == {payload['sha1']}
    assert leftovers(root) == []


def test_concurrent_downloads_processes(server, payload, tmp_path):
    """Separate processes share the store through the lock file: one download, one complete file."""
    server.files['/w.params'] = payload['data']
    server.delay = 1.0 / (len(payload['data']) >> 16)
    fields = dict(name='test-proc', model='asymmnet_small', kwargs=SMALL, file_name='asymmnet_small-proc.params',
                  hash=payload['sha1'], hash_type='sha1', url=server.url('/w.params'))
    go = str(tmp_path / 'go')
    script = ('import json, os, sys, time\n'
              'from gluon_asymmnet import model_store as ms\n'
              'entry = ms.register(json.loads(sys.argv[1]))\n'
              'open(sys.argv[3] + ".ready", "w").close()\n'
              'while not os.path.exists(sys.argv[2]): time.sleep(0.01)\n'
              'print(ms.get_model_file(entry, root=sys.argv[4]))\n')
    root = str(tmp_path / 'store')
    env = dict(os.environ, PYTHONPATH=ROOT, NO_PROXY='127.0.0.1')
    procs = [subprocess.Popen([sys.executable, '-c', script, json.dumps(fields), go, str(tmp_path / str(i)), root],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for i in range(PROCS)]
    deadline = time.time() + 120
    while not all(os.path.exists(str(tmp_path / ('%d.ready' % i))) for i in range(PROCS)):
        assert time.time() < deadline and all(p.poll() is None for p in procs)
        time.sleep(0.05)
    open(go, 'w').close()
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * PROCS, [o[1][-2000:] for o in outs]
    final = os.path.join(root, 'asymmnet_small-proc.params')
    assert [o[0].strip() for o in outs] == [final] * PROCS
    assert server.hits == {'/w.params': 1}
    assert ms.file_hash(final) == payload['sha1'] and leftovers(root) == []


def test_lock_held_elsewhere_times_out_with_message(payload, entries, tmp_path):
    entry = entries(hash=payload['sha1'], url=payload['path'])
    with filelock.FileLock(str(tmp_path / (entry.file_name + '.lock'))):
        with pytest.raises(ms.ModelStoreError, match=r'waited 0\.2s for .*\.lock'):
            ms.get_model_file(entry, root=str(tmp_path), lock_timeout=0.2)


def test_entries_are_validated():
    base = dict(name='x', model='asymmnet_small', file_name='a.params', hash='0' * 40, hash_type='sha1', url='u')
    with pytest.raises(ValueError, match='pickle'):
        ms.StoreEntry.from_dict(dict(base, file_name='trainer.states'))
    for field, value, words in [('hash', 'abc', 'hash must be'), ('hash_type', 'md5', 'hash_type'),
                                ('file_name', '../a.params', 'plain'), ('layout', 'bogus', 'unknown layout'),
                                ('archive', 'tar', 'archive')]:
        with pytest.raises(ValueError, match=words):
            ms.StoreEntry.from_dict(dict(base, **{field: value}))
    with pytest.raises(ValueError, match='unknown fields'):
        ms.StoreEntry.from_dict(dict(base, colour='red'))
    with pytest.raises(ValueError, match='exists'):
        ms.register(dict(base, name='asymmnet_large-released'))


def test_get_model_pretrained_errors(tmp_path):
    with pytest.raises(ValueError, match=r'no pretrained weights for asymmnet_large\(.*multiplier=0\.5.*'
                                         r'available: asymmnet_large-released \[a2ee7b4f\]'):
        ga.get_model('asymmnet_large', multiplier=0.5, pretrained=True, root=str(tmp_path))
    with pytest.raises(ValueError, match='no pretrained weights for asymmnet_small; models with weights'):
        ga.get_model('asymmnet_small', pretrained=True, root=str(tmp_path))
    with pytest.raises(ValueError, match="hash starting 'deadbeef'"):
        ga.get_model('asymmnet_large', pretrained='deadbeef', root=str(tmp_path))
    with pytest.raises(ValueError, match='no such parameter file, and not a hash prefix'):
        ga.get_model('asymmnet_large', pretrained=str(tmp_path / 'missing.params'))
    with pytest.raises(ValueError, match='pretrained must be'):
        ga.get_model('asymmnet_large', pretrained=3)
    assert os.listdir(str(tmp_path)) == []


# -- faults (issue 11, "Also"): permissions, mirrors, unwritable folders, a full disk --------------------

@pytest.mark.parametrize('umask', [0o022, 0o002])
def test_store_files_follow_the_umask(server, payload, entries, tmp_path, umask):
    server.files['/w.params'] = payload['data']
    entry = entries(hash=payload['sha1'], url=server.url('/w.params'))
    old = os.umask(umask)
    try:
        path = ms.get_model_file(entry, root=str(tmp_path / 'store'))
    finally:
        os.umask(old)
    for p in (path, path + '.lock'):
        assert os.stat(p).st_mode & 0o777 == 0o666 & ~umask, p


def test_mxnet_gluon_repo_points_downloads_at_a_mirror(server, payload, entries, tmp_path, monkeypatch):
    server.files['/mirror/gluon/models/w.params'] = payload['data']
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, 'w') as zf:
        zf.writestr('asymmnet_small-zip.params', payload['data'])
    server.files['/mirror/gluon/models/asymmnet_small-zip-0123abcd.zip'] = buf.getvalue()
    origin = 'http://127.0.0.1:%d' % closed_port()
    plain = entries(hash=payload['sha1'], url=origin + '/releases/download/v1/w.params')
    zipped = entries(hash=payload['sha1'], url=origin + '/gluon/models/asymmnet_small-zip-0123abcd.zip',
                     archive='zip', file_name='asymmnet_small-zip.params')
    monkeypatch.setenv('MXNET_GLUON_REPO', server.url('/mirror/'))
    assert ms.source_url(plain) == server.url('/mirror/gluon/models/w.params')
    for entry in (plain, zipped):
        path = ms.get_model_file(entry, root=str(tmp_path / 'store'))
        assert ms.file_hash(path) == payload['sha1']
    assert server.hits == {'/mirror/gluon/models/w.params': 1,
                           '/mirror/gluon/models/asymmnet_small-zip-0123abcd.zip': 1}
    # A local folder serves as a mirror too; an incomplete mirror is named in the error.
    local = tmp_path / 'local_mirror' / 'gluon' / 'models'
    local.mkdir(parents=True)
    (local / 'w.params').write_bytes(payload['data'])
    monkeypatch.setenv('MXNET_GLUON_REPO', str(tmp_path / 'local_mirror'))
    assert ms.file_hash(ms.get_model_file(plain, root=str(tmp_path / 'other'))) == payload['sha1']
    with pytest.raises(ms.ModelStoreError) as err:
        ms.get_model_file(zipped, root=str(tmp_path / 'other'))
    assert ('from %s (the MXNET_GLUON_REPO mirror of %s)' % (local / 'asymmnet_small-zip-0123abcd.zip', zipped.url)
            in str(err.value))


def test_store_root_that_is_not_a_folder(payload, entries, tmp_path):
    entry = entries(hash=payload['sha1'], url=payload['path'])
    afile = tmp_path / 'afile'
    afile.write_text('not a folder')
    with pytest.raises(ms.ModelStoreError, match='the model store folder %s is not a folder; point root=' % afile):
        ms.get_model_file(entry, root=str(afile))
    with pytest.raises(ms.ModelStoreError, match='cannot create the model store folder %s: Not a directory'
                       % (afile / 'models')):
        ms.get_model_file(entry, root=str(afile / 'models'))
    assert afile.read_text() == 'not a folder'


@needs_mounts
def test_read_only_store_serves_its_files_and_names_itself_for_missing_ones(payload, tmp_path):
    store = tmp_path / 'ro_store'
    store.mkdir()
    fields = dict(name='test-ro', model='asymmnet_small', kwargs=SMALL, file_name='here.params',
                  hash=payload['sha1'], hash_type='sha1', url=payload['path'])
    run = python_with_mount(store, 'size=64m', '''
        import json, sys
        from gluon_asymmnet import model_store as ms
        fields = json.loads(sys.argv[1])
        present = ms.register(fields)
        missing = ms.register(dict(fields, name='test-ro-missing', file_name='missing.params'))
        print(ms.get_model_file(present, root=sys.argv[2]))
        try:
            ms.get_model_file(missing, root=sys.argv[2])
        except ms.ModelStoreError as err:
            print(err)
        ''', json.dumps(fields), store,
        prepare='cp "%s" "$DIR/here.params" && mount -o remount,ro "$DIR"' % payload['path'])
    assert run.returncode == 0, run.stderr[-2000:]
    found, message = run.stdout.strip().splitlines()
    assert found == str(store / 'here.params')
    assert message == ('cannot store missing.params for test-ro-missing: the store folder %s is not writable '
                       '(Read-only file system); nothing was stored. Point root= (or MXNET_HOME) at another folder, '
                       'or have its owner put the file at %s (sha1 %s).'
                       % (store, store / 'missing.params', payload['sha1']))


@needs_mounts
def test_full_disk_during_download_says_so(server, payload, tmp_path):
    server.files['/w.params'] = payload['data']
    store = tmp_path / 'small_store'
    store.mkdir()
    fields = dict(name='test-full', model='asymmnet_small', kwargs=SMALL, file_name='w.params',
                  hash=payload['sha1'], hash_type='sha1', url=server.url('/w.params'))
    assert len(payload['data']) > 256 * 1024
    run = python_with_mount(store, 'size=256k', '''
        import json, os, sys
        from gluon_asymmnet import model_store as ms
        try:
            ms.get_model_file(ms.register(json.loads(sys.argv[1])), root=sys.argv[2])
        except ms.ModelStoreError as err:
            print(err)
        print(json.dumps(sorted(os.listdir(sys.argv[2]))))
        ''', json.dumps(fields), store)
    assert run.returncode == 0, run.stderr[-2000:]
    message, listing = run.stdout.strip().splitlines()
    assert message == ('cannot store w.params for test-full: the disk holding %s is full; nothing was stored. '
                       'Point root= (or MXNET_HOME) at another folder, or free some space there.' % store)
    assert json.loads(listing) == ['w.params.lock']


def test_write_failure_after_download_is_not_called_offline(server, payload, entries, tmp_path, monkeypatch):
    import errno

    def full(fd):
        raise OSError(errno.ENOSPC, 'No space left on device')

    server.files['/w.params'] = payload['data']
    entry = entries(hash=payload['sha1'], url=server.url('/w.params'))
    monkeypatch.setattr(ms.os, 'fsync', full)
    with pytest.raises(ms.ModelStoreError, match=r'the disk holding .* is full; nothing was stored') as err:
        ms.get_model_file(entry, root=str(tmp_path))
    assert 'Without network access' not in str(err.value)
    assert not os.path.exists(str(tmp_path / entry.file_name)) and leftovers(str(tmp_path)) == []
