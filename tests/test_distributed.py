"""The ps-lite launcher (launch.py): commands it builds, real kvstore jobs on loopback, and cleanup.

Real jobs run MXNet's dist_sync kvstore with 2 workers and 1 server on
127.0.0.1. The ssh and mpirun paths run for real through stand-in ``ssh`` and
``mpirun`` executables placed first on PATH: the fake ssh runs the remote
command in a new session with a bare environment (as sshd does) and drops the
connection when killed; the fake mpirun starts the ranks with
OMPI_COMM_WORLD_RANK set. Every process a job starts carries a unique marker
variable, so "nothing survives" is checked over every process on the machine.
"""
import os
import re
import shlex
import signal
import subprocess
import sys
import textwrap
import time
import uuid

import pytest

import launcher as launch
from launcher import Host, LaunchError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = sys.executable
# One OpenMP thread per process: 4 MXNet processes share 2 cores.
BASE_ENV = {'OMP_NUM_THREADS': '1', 'MXNET_CPU_WORKER_NTHREADS': '1'}

PUSH_PULL = '''
import json, os, sys
import mxnet as mx
kv = mx.kv.create('dist_sync')
kv.init(7, mx.nd.zeros((2, 3)))
kv.push(7, mx.nd.ones((2, 3)) * (kv.rank + 1))
out = mx.nd.zeros((2, 3))
kv.pull(7, out=out)
with open(os.path.join(sys.argv[1], 'rank%d.json' % kv.rank), 'w') as f:
    json.dump({'rank': kv.rank, 'num_workers': kv.num_workers, 'pulled': out.asnumpy().tolist(),
               'cwd': os.getcwd(), 'token': os.environ.get('TEST_TOKEN'),
               'leak': os.environ.get('ONLY_ON_LAUNCHER'),
               'node_host': os.environ.get('DMLC_NODE_HOST')}, f)
print('pulled', out.asnumpy().ravel().tolist(), flush=True)
'''

# Worker 1 dies after the keys exist; worker 0 then blocks forever in a sync pull.
DIE_WHILE_PEER_BLOCKS = '''
import os, sys
import mxnet as mx
kv = mx.kv.create('dist_sync')
kv.init(7, mx.nd.zeros((2,)))
if kv.rank == 1:
    os._exit(3)
out = mx.nd.zeros((2,))
kv.push(7, mx.nd.ones((2,)))
kv.pull(7, out=out)
out.wait_to_read()
'''

# Cheap workers (no MXNet): record the pid, then hang or fail.
HANG_OR_FAIL = '''
import os, sys, time
with open(os.path.join(sys.argv[1], 'pid%d' % os.getpid()), 'w') as f:
    f.write(str(os.getpid()))
if len(sys.argv) > 2 and len(os.listdir(sys.argv[1])) >= 2:
    time.sleep(0.5)
    sys.exit(int(sys.argv[2]))
time.sleep(1000)
'''

FAKE_SSH = '''#!{python}
"""ssh stand-in: run the remote command locally the way sshd would."""
import os, subprocess, sys, threading
args = sys.argv[1:]
i = 0
while args[i].startswith('-'):
    i += 2 if args[i] in ('-o', '-p', '-l', '-i', '-F') else 1
with open(os.environ['FAKE_SSH_LOG'], 'a') as log:
    log.write(repr(sys.argv[1:]) + '\\n')
# A fresh login: new session, bare environment, the remote shell parses the command.
bare = {{'PATH': os.environ['PATH'], 'HOME': os.environ.get('HOME', '/')}}
child = subprocess.Popen(['/bin/sh', '-c', ' '.join(args[i + 1:])], env=bare, cwd='/',
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         start_new_session=True)
def forward_stdin():
    while True:
        data = os.read(0, 65536)
        if not data:
            break
        child.stdin.write(data)
        child.stdin.flush()
    child.stdin.close()
threading.Thread(target=forward_stdin, daemon=True).start()
for line in iter(child.stdout.readline, b''):
    sys.stdout.buffer.write(line)
    sys.stdout.buffer.flush()
sys.exit(child.wait())
'''

FAKE_MPIRUN = '''#!{python}
"""mpirun stand-in: start -np copies of the command with their MPI rank set."""
import os, signal, subprocess, sys, time
args = sys.argv[1:]
opts = {{}}
while args[0].startswith('-'):
    opts[args[0]] = args[1]
    args = args[2:]
with open(os.environ['FAKE_MPI_LOG'], 'w') as log:
    log.write(repr(sys.argv[1:]))
# Own sessions, as the local launcher's processes have (the CPU scheduler shares by session).
ranks = [subprocess.Popen(args, env=dict(os.environ, OMPI_COMM_WORLD_RANK=str(r)),
                          start_new_session=True) for r in range(int(opts['-np']))]
signal.signal(signal.SIGTERM, lambda *a: [p.terminate() for p in ranks])
while any(p.poll() is None for p in ranks):
    failed = [p.returncode for p in ranks if p.returncode]
    if failed:
        for p in ranks:
            p.poll() is None and p.terminate()
        [p.wait() for p in ranks]
        sys.exit(failed[0])
    time.sleep(0.05)
sys.exit(max(p.returncode for p in ranks))
'''


def write(path, text, mode=0o644):
    path.write_text(textwrap.dedent(text))
    path.chmod(mode)
    return str(path)


def survivors(token):
    """Live (non-zombie) processes carrying TEST_TOKEN=token in their environment."""
    needle = ('TEST_TOKEN=%s' % token).encode()
    found = []
    for entry in os.listdir('/proc'):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open('/proc/%s/environ' % entry, 'rb') as f:
                if needle not in f.read().split(b'\0'):
                    continue
            with open('/proc/%s/stat' % entry) as f:
                if f.read().rsplit(')', 1)[1].split()[0] == 'Z':
                    continue
        except OSError:
            continue
        found.append(int(entry))
    return found


def wait_gone(token, seconds=15):
    """Survivors after giving the guards up to ``seconds`` to finish stopping them."""
    end = time.monotonic() + seconds
    while survivors(token) and time.monotonic() < end:
        time.sleep(0.1)
    return survivors(token)


def job_env(token):
    return dict(BASE_ENV, TEST_TOKEN=token)


def read_results(folder):
    import json
    return sorted((json.loads(p.read_text()) for p in folder.glob('rank*.json')),
                  key=lambda r: r['rank'])


@pytest.fixture()
def fake_bin(tmp_path, monkeypatch):
    """A PATH folder holding the fake ssh and mpirun, and the files they log to."""
    folder = tmp_path / 'bin'
    folder.mkdir()
    write(folder / 'ssh', FAKE_SSH.format(python=PY), 0o755)
    write(folder / 'mpirun', FAKE_MPIRUN.format(python=PY), 0o755)
    monkeypatch.setenv('PATH', '%s%s%s' % (folder, os.pathsep, os.environ['PATH']))
    monkeypatch.setenv('FAKE_SSH_LOG', str(tmp_path / 'ssh.log'))
    monkeypatch.setenv('FAKE_MPI_LOG', str(tmp_path / 'mpi.log'))
    return folder


# ---------------------------------------------------------------- pure command construction

def test_role_env_and_local_processes():
    env = launch.role_env('server', '10.0.0.1', 9000, 4, 2, node_host='10.0.0.3')
    assert env == {'DMLC_ROLE': 'server', 'DMLC_PS_ROOT_URI': '10.0.0.1',
                   'DMLC_PS_ROOT_PORT': '9000', 'DMLC_NUM_SERVER': '2', 'DMLC_NUM_WORKER': '4',
                   'DMLC_NODE_HOST': '10.0.0.3'}
    env = launch.role_env('worker', '10.0.0.1', 9000, 4, 2, node_host='x', interface='ib0')
    assert env['DMLC_INTERFACE'] == 'ib0' and 'DMLC_NODE_HOST' not in env

    procs = launch.local_processes(['python', 'train.py'], 2, 1, port=9555, env={'A': 'b'},
                                   python='/py', grace=3)
    assert [(p.label, p.role) for p in procs] == [
        ('scheduler', 'scheduler'), ('server 0', 'server'), ('worker 0', 'worker'),
        ('worker 1', 'worker')]
    guard = ['/py', '-c', launch.guard_source(), '--watch-stdin', '1', '--grace', '3.0', '--']
    assert procs[1].argv == guard + ['/py', '-c', 'import mxnet']
    assert procs[2].argv == guard + ['python', 'train.py']
    for proc in procs:
        assert proc.env == {'A': 'b', 'DMLC_ROLE': proc.role, 'DMLC_PS_ROOT_URI': '127.0.0.1',
                            'DMLC_PS_ROOT_PORT': '9555', 'DMLC_NUM_SERVER': '1',
                            'DMLC_NUM_WORKER': '2', 'DMLC_NODE_HOST': '127.0.0.1'}


def test_ssh_commands_hosts_env_cwd(tmp_path):
    hostfile = write(tmp_path / 'hosts', '''
        # the scheduler runs on the first host
        10.0.0.1
        alice@10.0.0.2:2222   # user and ssh port
    ''')
    hosts = launch.parse_hostfile(hostfile)
    assert hosts == [Host('10.0.0.1', None, None), Host('10.0.0.2', 'alice', 2222)]
    procs = launch.ssh_processes(['python', 'train_imagenet.py', '--kvstore', 'dist_sync'],
                                 hosts, 3, 2, port=9100, env={'OMP_NUM_THREADS': '4'},
                                 cwd='/shared/run dir', python='/opt/py/bin/python', grace=5)
    placed = [(p.label, p.host) for p in procs]
    assert placed == [('scheduler', '10.0.0.1'), ('server 0', '10.0.0.1'),
                      ('server 1', '10.0.0.2'), ('worker 0', '10.0.0.1'),
                      ('worker 1', '10.0.0.2'), ('worker 2', '10.0.0.1')]
    opts = list(launch.DEFAULT_SSH_OPTIONS)
    assert procs[0].argv[:-1] == ['ssh'] + opts + ['10.0.0.1']
    assert procs[4].argv[:-1] == ['ssh'] + opts + ['-p', '2222', 'alice@10.0.0.2']
    remote = shlex.split(procs[4].argv[-1])
    assert remote == [
        'env', 'DMLC_NODE_HOST=10.0.0.2', 'DMLC_NUM_SERVER=2', 'DMLC_NUM_WORKER=3',
        'DMLC_PS_ROOT_PORT=9100', 'DMLC_PS_ROOT_URI=10.0.0.1', 'DMLC_ROLE=worker',
        'OMP_NUM_THREADS=4', '/opt/py/bin/python', '-c', launch.guard_source(),
        '--cwd', '/shared/run dir', '--watch-stdin', '1', '--grace', '5.0', '--',
        'python', 'train_imagenet.py', '--kvstore', 'dist_sync']
    server = shlex.split(procs[2].argv[-1])
    assert 'DMLC_ROLE=server' in server and server[-3:] == ['/opt/py/bin/python', '-c',
                                                            'import mxnet']
    assert all(p.env == {} for p in procs)  # nothing rides on this machine's environment

    with_iface = launch.ssh_processes(['w'], hosts, 1, 1, interface='eth1')
    words = shlex.split(with_iface[2].argv[-1])
    assert 'DMLC_INTERFACE=eth1' in words and not any(w.startswith('DMLC_NODE_HOST') for w in words)
    assert '--find-node-host' not in words

    # Host names: ps-lite binds numeric addresses only, so the node finds its own and the
    # scheduler binds all interfaces.
    named = launch.ssh_processes(['w'], ['node1', '10.0.0.2'], 2, 1)
    scheduler, worker0, worker1 = (shlex.split(named[i].argv[-1]) for i in (0, 2, 3))
    assert 'DMLC_USE_KUBERNETES=1' in scheduler and 'DMLC_PS_ROOT_URI=node1' in scheduler
    assert not any(w.startswith(('DMLC_NODE_HOST', 'DMLC_USE_KUBERNETES')) for w in worker0)
    assert worker0[worker0.index('--find-node-host') + 1] == '1'
    assert 'DMLC_NODE_HOST=10.0.0.2' in worker1 and '--find-node-host' not in worker1
    assert 'DMLC_PS_ROOT_URI=node1' in worker1


def test_mpi_command_rank_mapping(tmp_path):
    hostfile = write(tmp_path / 'hosts', 'node1 slots=8\nnode2 slots=8\n')
    argv = launch.mpi_command(['python', 'train.py'], hostfile, 4, 2, port=9200,
                              env={'X': '1'}, cwd='/run', python='/py', grace=7)
    assert argv == ['mpirun', '-np', '7', '--hostfile', hostfile, '--map-by', 'node', 'env',
                    'DMLC_NUM_SERVER=2', 'DMLC_NUM_WORKER=4', 'DMLC_PS_ROOT_PORT=9200',
                    'DMLC_PS_ROOT_URI=node1', 'X=1', '/py', '-c', launch.guard_source(),
                    '--cwd', '/run', '--mpi-servers', '2', '--find-node-host', '1',
                    '--grace', '7.0', '--',
                    'python', 'train.py']
    # MPICH's Hydra: -f, and no Open MPI mapping option.
    mpich = launch.mpi_command(['w'], hostfile, 1, 1, mpirun='mpiexec', mpirun_args=(),
                               hostfile_option='-f')
    assert mpich[:6] == ['mpiexec', '-np', '3', '-f', hostfile, 'env']


def test_bad_input_is_named(tmp_path, capsys):
    bad = write(tmp_path / 'hosts', '10.0.0.1\n10.0.0.2 10.0.0.3\n')
    with pytest.raises(LaunchError, match=r"hosts' line 2: expected \[user@\]host"):
        launch.parse_hostfile(bad)
    with pytest.raises(LaunchError, match='lists no hosts'):
        launch.parse_hostfile(write(tmp_path / 'empty', '# nothing\n\n'))
    with pytest.raises(LaunchError, match='cannot read hostfile .*missing'):
        launch.parse_hostfile(str(tmp_path / 'missing'))
    with pytest.raises(LaunchError, match='num_workers must be an integer >= 1, got 0'):
        launch.local_processes(['w'], 0, 1)
    with pytest.raises(LaunchError, match='num_servers must be an integer >= 1, got 0'):
        launch.local_processes(['w'], 1, 0)
    with pytest.raises(LaunchError, match='DMLC_ROLE is set by the launcher'):
        launch.local_processes(['w'], 1, 1, env={'DMLC_ROLE': 'worker'})
    with pytest.raises(LaunchError, match='non-empty list'):
        launch.local_processes([], 1, 1)
    with pytest.raises(LaunchError, match=r'--env NOT_SET_ANYWHERE_X: no value given'):
        launch.parse_env(['NOT_SET_ANYWHERE_X'], environ={})
    assert launch.parse_env(['A=1=2', 'B'], environ={'B': 'v'}) == {'A': '1=2', 'B': 'v'}
    with pytest.raises(LaunchError, match='port must be an integer in 1..65535, got 70000'):
        launch.ssh_processes(['w'], ['h'], 1, 1, port=70000)

    for argv, message in [
            (['-n', '2', 'python', 'x.py'], 'after "--"'),
            (['-n', '2', '-H', bad, '--', 'w'], '-H/--hostfile is for --launcher ssh or mpi'),
            (['-n', '2', '--launcher', 'ssh', '--', 'w'], 'needs -H/--hostfile'),
            (['-n', '2', '--launcher', 'ssh', '-H', bad, '--', 'w'], 'line 2'),
            (['-n', '-1', '--', 'w'], 'num_workers must be an integer >= 1, got -1')]:
        with pytest.raises(SystemExit) as exit_info:
            launch.main(argv)
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err


def test_dry_run_prints_commands(tmp_path, capsys):
    hostfile = write(tmp_path / 'hosts', '10.0.0.1\n10.0.0.2\n')
    assert launch.main(['-n', '2', '--launcher', 'ssh', '-H', hostfile, '--cwd', '/r',
                        '--dry-run', '--', 'python', 'train.py']) == 0
    out = capsys.readouterr().out
    assert out.count('\nssh -o BatchMode=yes') == 4
    assert '# worker 1\nssh -o BatchMode=yes -o ServerAliveInterval=30 ' \
           '-o ServerAliveCountMax=4 10.0.0.2 ' in out
    assert 'DMLC_ROLE=worker' in out and '--cwd /r' in out and 'python train.py' in out


# ---------------------------------------------------------------- real jobs on loopback

def test_missing_command_and_timeout(tmp_path, capsys):
    token = uuid.uuid4().hex
    missing = str(tmp_path / 'no_such_program')
    assert launch.launch_local([missing], 1, 1, env=job_env(token), timeout=240, grace=5) == 127
    out = capsys.readouterr().out
    assert "[worker 0] launch: cannot run %r on " % missing in out
    assert 'worker 0 exited with exit code 127: stopping all processes' in out

    pids = tmp_path / 'pids'
    pids.mkdir()
    hang = write(tmp_path / 'hang.py', HANG_OR_FAIL)
    assert launch.launch_local([PY, hang, str(pids)], 1, 1, env=job_env(token), timeout=3,
                               grace=5) == 124
    assert 'timeout after 3s: stopping all processes' in capsys.readouterr().out
    assert survivors(token) == []


def test_local_push_pull_two_workers(tmp_path, capsys):
    token = uuid.uuid4().hex
    script = write(tmp_path / 'push_pull.py', PUSH_PULL)
    code = launch.launch_local([PY, script, str(tmp_path)], num_workers=2, num_servers=1,
                               env=job_env(token), timeout=240)
    out = capsys.readouterr().out
    assert code == 0, out
    results = read_results(tmp_path)
    assert [r['rank'] for r in results] == [0, 1]
    for r in results:
        # dist_sync sums both workers' pushes: 1 + 2.
        assert r['num_workers'] == 2 and r['pulled'] == [[3.0] * 3] * 2
        assert r['node_host'] == '127.0.0.1'
    assert '[worker 0] pulled [3.0, 3.0, 3.0, 3.0, 3.0, 3.0]' in out
    assert '[worker 1] pulled [3.0, 3.0, 3.0, 3.0, 3.0, 3.0]' in out
    assert survivors(token) == []


def test_failing_worker_stops_everything(tmp_path, capsys):
    token = uuid.uuid4().hex
    script = write(tmp_path / 'die.py', DIE_WHILE_PEER_BLOCKS)
    # Without the teardown the blocked worker and the server would hang until the timeout (124).
    code = launch.launch_local([PY, script], num_workers=2, num_servers=1, env=job_env(token),
                               timeout=240, grace=5)
    out = capsys.readouterr().out
    assert code == 3, out
    assert 'exited with exit code 3: stopping all processes' in out
    assert survivors(token) == []


@pytest.mark.parametrize('sig, expected', [(signal.SIGTERM, 143), (signal.SIGKILL, -9)])
def test_interrupted_launcher_leaves_nothing(tmp_path, sig, expected):
    """SIGTERM: the launcher stops every group. SIGKILL: the guards see their stdin close."""
    token = uuid.uuid4().hex
    pids = tmp_path / 'pids'
    pids.mkdir()
    script = write(tmp_path / 'hang.py', HANG_OR_FAIL)
    launcher = subprocess.Popen(
        [PY, os.path.join(ROOT, 'launch.py'), '-n', '2', '--grace', '5',
         '--env', 'TEST_TOKEN=%s' % token, '--', PY, script, str(pids)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    end = time.monotonic() + 120
    while len(os.listdir(pids)) < 2 and time.monotonic() < end:
        time.sleep(0.1)
    assert len(os.listdir(pids)) == 2
    assert len(survivors(token)) >= 6  # 4 guards, 2 workers, and the server/scheduler
    launcher.send_signal(sig)
    assert launcher.wait(60) == expected
    assert wait_gone(token) == []


def test_ssh_launch_through_fake_ssh(tmp_path, fake_bin, capsys, monkeypatch):
    token = uuid.uuid4().hex
    workdir = tmp_path / 'work dir'
    workdir.mkdir()
    write(workdir / 'push_pull.py', PUSH_PULL)
    hostfile = write(tmp_path / 'hosts', '127.0.0.1\nbob@127.0.0.1:2222\n')
    monkeypatch.setenv('ONLY_ON_LAUNCHER', 'must not reach the remote side')
    code = launch.launch_ssh([PY, 'push_pull.py', str(workdir)], hostfile, num_workers=2,
                             num_servers=1, env=job_env(token), cwd=str(workdir),
                             port=launch.free_port(), timeout=240)
    out = capsys.readouterr().out
    assert code == 0, out
    results = read_results(workdir)
    assert [r['rank'] for r in results] == [0, 1]
    for r in results:
        assert r['pulled'] == [[3.0] * 3] * 2 and r['cwd'] == str(workdir)
        assert r['token'] == token and r['leak'] is None
        assert r['node_host'] == '127.0.0.1'
    log = (tmp_path / 'ssh.log').read_text().splitlines()
    assert len(log) == 4
    # scheduler, server 0, worker 0 on line 1; worker 1 on line 2.
    bob = [line for line in log if "'-p', '2222', 'bob@127.0.0.1'" in line]
    assert len(bob) == 1 and 'DMLC_ROLE=worker' in bob[0]
    assert survivors(token) == []


def test_ssh_failure_stops_remote_processes(tmp_path, fake_bin, capsys):
    """Remote groups live in other sessions: only the guard's stdin watch can stop them."""
    token = uuid.uuid4().hex
    pids = tmp_path / 'pids'
    pids.mkdir()
    script = write(tmp_path / 'hang_or_fail.py', HANG_OR_FAIL)
    code = launch.launch_ssh([PY, script, str(pids), '5'], [Host('127.0.0.1', None, None)],
                             num_workers=2, num_servers=1, env=job_env(token),
                             port=launch.free_port(), timeout=240, grace=5)
    out = capsys.readouterr().out
    assert code == 5, out
    assert len(os.listdir(pids)) == 2
    assert wait_gone(token) == []


def test_mpi_launch_through_fake_mpirun(tmp_path, fake_bin, capsys):
    token = uuid.uuid4().hex
    script = write(tmp_path / 'push_pull.py', PUSH_PULL)
    # A host name, not an IP: the guards resolve it and find DMLC_NODE_HOST themselves.
    hostfile = write(tmp_path / 'hosts', 'localhost slots=4\n')
    code = launch.launch_mpi([PY, script, str(tmp_path)], hostfile, num_workers=2,
                             num_servers=1, env=job_env(token), port=launch.free_port(),
                             cwd=str(tmp_path), timeout=240)
    out = capsys.readouterr().out
    assert code == 0, out
    results = read_results(tmp_path)
    assert [r['rank'] for r in results] == [0, 1]
    for r in results:
        assert r['pulled'] == [[3.0] * 3] * 2 and r['node_host'] == '127.0.0.1'
    # Rank -> role: 0 scheduler, 1 server 0, 2..3 workers 0..1, each prefixing its lines.
    assert out.count('] pulled [3.0') == 2
    assert '[worker 0] pulled' in out and '[worker 1] pulled' in out
    assert "'-np', '4'" in (tmp_path / 'mpi.log').read_text()
    assert survivors(token) == []


# ---------------------------------------------------------------- the real job: train_imagenet.py

def file_digest(path):
    """SHA-1 over a .params file's sorted names and bytes (train_imagenet.py logs the same of its net)."""
    import hashlib

    import mxnet as mx
    import numpy as np
    arrays = mx.nd.load(path)
    h = hashlib.sha1()
    for name in sorted(arrays):
        h.update(name.encode())
        h.update(np.ascontiguousarray(arrays[name].asnumpy()).tobytes())
    return h.hexdigest()


def test_train_imagenet_dist_sync_two_workers(tmp_path, capsys):
    """2 workers + 1 server train on the demo digits; both end identical, only rank 0 writes."""
    token = uuid.uuid4().hex
    # Each worker gets its own --save-dir (named by its pid), so a write by rank 1 would show.
    worker = ['sh', '-c', 'exec "$0" "$1" --kvstore dist_sync --model asymmnet_small '
              '--width-scale 0.35 --num-epochs 1 --batch-size 32 -j 0 --lr 0.1 --log-interval 10 '
              '--save-dir "$2/save.$$"', PY, os.path.join(ROOT, 'train_imagenet.py'), str(tmp_path)]
    code = launch.launch_local(worker, num_workers=2, num_servers=1, env=job_env(token),
                               timeout=400)
    out = capsys.readouterr().out
    assert code == 0, out[-3000:]

    finals = re.findall(r'^\[worker (\d)\] (?:\[rank (\d)\] )?final parameters: sha1 ([0-9a-f]{40})',
                        out, re.M)
    assert sorted(f[0] for f in finals) == ['0', '1'] and sorted(f[1] for f in finals) == ['', '1']
    # Before Cluster.broadcast_parameters, about one run in four (under load) ended with one worker's classifier
    # holding the first summed gradient as its weight; the workers' own lines show where they diverged.
    assert finals[0][2] == finals[1][2], 'the workers ended with different parameters:\n' + out[-3000:]

    saved = list(tmp_path.glob('save.*'))
    assert len(saved) == 1, 'only rank 0 may create its save dir: %s' % saved
    names = sorted(p.name for p in saved[0].iterdir())
    assert 'digits-asymmnet_small-0.params' in names and 'train_imagenet.log' in names
    assert any(n.endswith('-best.params') for n in names)
    # The checkpoint of record holds exactly the parameters both workers ended with.
    assert file_digest(str(saved[0] / 'digits-asymmnet_small-0.params')) == finals[0][2]
    log = (saved[0] / 'train_imagenet.log').read_text()
    assert '[Epoch 0] validation: top1=' in log and '[rank' not in log
    assert log.count('final parameters: sha1') == 1
    # Rank 1 trained too: its lines reach the launcher's output only.
    assert re.search(r'^\[worker \d\] \[rank 1\] \[Epoch 0\] training:', out, re.M)
    assert survivors(token) == []
