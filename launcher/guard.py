"""The guard every launched process runs under: one process group, stopped as a whole on demand.

The guard is shipped to every node as ``python -c <source of _guard>``, so it
uses the standard library only and remote nodes need nothing installed. It
keeps the process and its children in one process group and kills that group
(SIGTERM, then SIGKILL after a grace period) when it receives
SIGTERM/SIGINT/SIGHUP or when its standard input closes: the launcher keeps
that pipe open, so the launcher dying or an ssh connection dropping stops the
processes behind it. Under ``mpirun`` it also maps the MPI rank to the
ps-lite role, and on named hosts it finds the numeric ``DMLC_NODE_HOST``.
"""
import functools
import inspect

__all__ = ['DEFAULT_GRACE', 'guard_source', 'guard_argv']

DEFAULT_GRACE = 10.0


def _guard(argv):
    """Run one ps-lite process on its node and stop its whole process group on demand.

    Shipped to every node as ``python -c <source of this function>``, so it
    uses the standard library only. ``argv``: options ``--cwd DIR``,
    ``--grace SECONDS``, ``--watch-stdin 1`` (stop when standard input
    closes), ``--mpi-servers S`` (take the role from the MPI rank),
    ``--find-node-host 1`` (set ``DMLC_NODE_HOST`` here), then ``--`` and
    the command. Returns the exit status to exit with.
    """
    import ipaddress
    import os
    import signal
    import socket
    import subprocess
    import sys
    import threading
    import time
    if '--' not in argv:
        sys.stderr.write('launch guard: usage: [options] -- command...\n')
        return 2
    split = argv.index('--')
    opts = dict(zip(argv[:split:2], argv[1:split:2]))
    command = argv[split + 1:]
    grace = float(opts.get('--grace', '10'))
    host = socket.gethostname()
    prefix = b''
    if '--mpi-servers' in opts:
        names = ('OMPI_COMM_WORLD_RANK', 'PMI_RANK', 'PMIX_RANK', 'MV2_COMM_WORLD_RANK', 'SLURM_PROCID')
        ranks = [os.environ[name] for name in names if name in os.environ]
        if not ranks:
            sys.stderr.write('launch: no MPI rank in the environment of %s (looked for %s): '
                             'start this under mpirun\n' % (host, ', '.join(names)))
            return 2
        rank, servers = int(ranks[0]), int(opts['--mpi-servers'])
        if rank == 0:
            role, label = 'scheduler', 'scheduler'
        elif rank <= servers:
            role, label = 'server', 'server %d' % (rank - 1)
        else:
            role, label = 'worker', 'worker %d' % (rank - 1 - servers)
        os.environ['DMLC_ROLE'] = role
        prefix = ('[%s] ' % label).encode()
        if role != 'worker':
            command = [sys.executable, '-c', 'import mxnet']
        if role == 'scheduler':
            try:
                probe = socket.socket()
                probe.bind((os.environ['DMLC_PS_ROOT_URI'], 0))
                probe.close()
            except OSError as err:
                sys.stderr.write("launch: the scheduler (MPI rank 0) runs on %s, but DMLC_PS_ROOT_URI "
                                 "%s (the hostfile's first host) is not this machine: %s; mpirun "
                                 "must place rank 0 there\n" % (host, os.environ['DMLC_PS_ROOT_URI'], err))
                return 2
            try:
                ipaddress.ip_address(os.environ['DMLC_PS_ROOT_URI'])
            except ValueError:
                # ps-lite binds to numeric addresses only; this flag makes the scheduler bind 0.0.0.0.
                os.environ['DMLC_USE_KUBERNETES'] = '1'
    if opts.get('--find-node-host') == '1' and not (
            os.environ.get('DMLC_INTERFACE') or os.environ.get('DMLC_NODE_HOST')):
        # ps-lite binds each process to DMLC_NODE_HOST, which must be a numeric address that
        # peers can reach: the source address of this node's route to the scheduler.
        root = os.environ['DMLC_PS_ROOT_URI']
        try:
            root_ip = socket.gethostbyname(root)
            probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            probe.connect((root_ip, int(os.environ['DMLC_PS_ROOT_PORT'])))
            node_ip = probe.getsockname()[0]
            probe.close()
        except OSError as err:
            sys.stderr.write('launch: cannot find a route from %s to DMLC_PS_ROOT_URI %s: %s\n'
                             % (host, root, err))
            return 2
        if root != 'localhost' and not root.startswith('127.') and node_ip.startswith('127.'):
            sys.stderr.write('launch: DMLC_PS_ROOT_URI %s resolves to %s on %s, a loopback address '
                             'other nodes cannot reach: list IP addresses in the hostfile or pass '
                             '--interface\n' % (root, root_ip, host))
            return 2
        os.environ['DMLC_NODE_HOST'] = node_ip
    if '--cwd' in opts:
        try:
            os.chdir(opts['--cwd'])
        except OSError as err:
            sys.stderr.write('launch: cannot enter working directory %r on %s: %s\n'
                             % (opts['--cwd'], host, err.strerror))
            return 2
    try:
        os.setpgrp()
    except OSError:
        pass  # a session leader already leads its own group
    if os.getpgrp() != os.getpid():
        sys.stderr.write('launch: the guard on %s could not lead its own process group\n' % host)
        return 2
    pipe = subprocess.PIPE if prefix else None
    try:
        child = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=pipe,
                                 stderr=subprocess.STDOUT if prefix else None)
    except OSError as err:
        sys.stderr.write('launch: cannot run %r on %s: %s\n' % (command[0], host, err.strerror))
        return 127
    stop = []

    def on_signal(signum, frame):
        if not stop:
            stop.append(time.monotonic() + grace)
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                signal.signal(sig, signal.SIG_IGN)
            os.killpg(0, signal.SIGTERM)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)

    def watch_stdin():
        try:
            while os.read(0, 65536):
                pass
        except OSError:
            pass
        os.kill(os.getpid(), signal.SIGTERM)

    def pump():
        for line in iter(child.stdout.readline, b''):
            sys.stdout.buffer.write(prefix + line)
            sys.stdout.buffer.flush()

    if opts.get('--watch-stdin') == '1':
        threading.Thread(target=watch_stdin, daemon=True).start()
    pumping = threading.Thread(target=pump, daemon=True)
    if prefix:
        pumping.start()
    while child.poll() is None:
        if stop and time.monotonic() > stop[0]:
            os.killpg(0, signal.SIGKILL)
        time.sleep(0.05)
    # Whatever the command left behind in its group goes with it.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    os.killpg(0, signal.SIGTERM)
    if prefix:
        pumping.join(grace)
    code = child.returncode
    return 128 - code if code < 0 else code


@functools.lru_cache(maxsize=None)
def guard_source():
    """The Python program each launched process runs under (for ``python -c``)."""
    return inspect.getsource(_guard) + '\nimport sys\nsys.exit(_guard(sys.argv[1:]))\n'


def guard_argv(python, command, grace, cwd=None, watch_stdin=True, mpi_servers=None,
               find_node_host=False):
    """``[python, -c, guard program, options..., --, *command]``: ``command`` run under the guard."""
    argv = [python, '-c', guard_source()]
    if cwd is not None:
        argv += ['--cwd', cwd]
    if mpi_servers is not None:
        argv += ['--mpi-servers', str(mpi_servers)]
    if find_node_host:
        argv += ['--find-node-host', '1']
    if watch_stdin:
        argv += ['--watch-stdin', '1']
    return argv + ['--grace', repr(float(grace)), '--'] + list(command)
