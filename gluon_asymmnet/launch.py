"""Start MXNet ps-lite kvstore jobs on one machine or on a cluster (ssh, mpirun).

MXNet's bundled ``tools/launch.py`` (with ``dmlc_tracker``) crashes on Python
>= 3.9 and leaves its children running (DESIGN.md section 7). This launcher
starts the scheduler, ``num_servers`` servers and ``num_workers`` workers of a
``dist_sync`` / ``dist_device_sync`` / ``dist_async`` job with the ps-lite
environment (``DMLC_ROLE``, ``DMLC_PS_ROOT_URI``, ``DMLC_PS_ROOT_PORT``,
``DMLC_NUM_SERVER``, ``DMLC_NUM_WORKER``, and ``DMLC_NODE_HOST`` or
``DMLC_INTERFACE``).

- Workers run the user's command. Servers and the scheduler run
  ``python -c "import mxnet"``: MXNet enters its server loop at import when
  ``DMLC_ROLE`` is ``server`` or ``scheduler`` and exits when the workers are
  done (``mxnet/kvstore/kvstore_server.py``).
- Every process runs under a small guard program (:func:`_guard`, standard
  library only, shipped with ``python -c`` so remote nodes need nothing
  installed). The guard keeps the process and its children in one process
  group and kills that group (SIGTERM, then SIGKILL after a grace period) when
  it receives SIGTERM/SIGINT/SIGHUP or when its standard input closes: the
  launcher keeps that pipe open, so the launcher dying or an ssh connection
  dropping stops the processes behind it.
- The launcher stops everything at the first process that fails (or on
  SIGINT/SIGTERM/SIGHUP, or at the timeout), and returns the first failing
  exit code (``128 + N`` for a process killed by signal N, 124 for a timeout,
  ``128 + N`` when the launcher itself was interrupted by signal N).
- Output lines are prefixed with the process's role and launch index
  (``[worker 1]``). ps-lite's scheduler assigns ``kv.rank`` itself, so launch
  index and rank are not necessarily equal.

Placement:

- ``local``: every process on this machine, on 127.0.0.1, on a free port.
- ``ssh``: a hostfile lists ``[user@]host[:ssh_port]``, one per line. The
  scheduler runs on the first line's host (that address is
  ``DMLC_PS_ROOT_URI``), server ``i`` on line ``i mod H`` and worker ``j`` on
  line ``j mod H``, each in the launcher's working directory with the same
  Python path, and the environment written explicitly on the remote command.
  ps-lite binds every process to ``DMLC_NODE_HOST``, which must be numeric:
  for an IP line it is that IP; for a name the guard takes the source address
  of the node's route to the scheduler, and the scheduler binds all
  interfaces (``DMLC_USE_KUBERNETES=1``, ps-lite's switch for that).
- ``mpi``: one ``mpirun -np 1+S+W``; MPI rank 0 is the scheduler and must run
  on the hostfile's first host, ranks ``1..S`` are servers ``0..S-1``, ranks
  ``S+1..S+W`` are workers ``0..W-1`` (``--map-by node`` spreads them over the
  hosts round-robin). The guard reads the rank from the MPI environment and
  finds ``DMLC_NODE_HOST`` as for ssh host names.
"""
import argparse
import functools
import inspect
import ipaddress
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import namedtuple

__all__ = ['LaunchError', 'Host', 'Process', 'parse_hostfile', 'parse_env', 'role_env',
           'free_port', 'local_processes', 'ssh_processes', 'mpi_command',
           'launch_local', 'launch_ssh', 'launch_mpi', 'main']

ROLES = ('scheduler', 'server', 'worker')
LAUNCHERS = ('local', 'ssh', 'mpi')
DEFAULT_PORT = 9091
DEFAULT_GRACE = 10.0
# BatchMode: never hang on a password prompt; keep-alives: a dead network ends the ssh client.
DEFAULT_SSH_OPTIONS = ('-o', 'BatchMode=yes', '-o', 'ServerAliveInterval=30',
                       '-o', 'ServerAliveCountMax=4')
DEFAULT_MPIRUN_ARGS = ('--map-by', 'node')
# Variables the launcher owns; a user value would silently break the job.
MANAGED_ENV = ('DMLC_ROLE', 'DMLC_PS_ROOT_URI', 'DMLC_PS_ROOT_PORT', 'DMLC_NUM_SERVER',
               'DMLC_NUM_WORKER', 'DMLC_NODE_HOST', 'DMLC_INTERFACE')
SERVER_CODE = 'import mxnet'
_ENV_NAME = re.compile(r'[A-Za-z_][A-Za-z0-9_]*$')


class LaunchError(ValueError):
    """A launch request that cannot be carried out (counts, hostfile, environment, command)."""


Host = namedtuple('Host', 'address user ssh_port')
Host.__doc__ = """One hostfile line: the address ps-lite uses, the ssh user and ssh port (or None)."""

Process = namedtuple('Process', 'label role host argv env')
Process.__doc__ = """One process to start here: its output label, ps-lite role, the host it
serves (None for this machine), the argv run on this machine, and the variables
added to this machine's environment for it."""


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


def _guard_argv(python, command, grace, cwd=None, watch_stdin=True, mpi_servers=None,
                find_node_host=False):
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


def _check_counts(num_workers, num_servers):
    for name, value in (('num_workers', num_workers), ('num_servers', num_servers)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise LaunchError('%s must be an integer >= 1, got %r' % (name, value))


def _check_port(port):
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise LaunchError('port must be an integer in 1..65535, got %r' % (port,))


def _check_command(command):
    if isinstance(command, str):
        command = shlex.split(command)
    command = list(command or ())
    if not command or not all(isinstance(part, str) for part in command):
        raise LaunchError('the command to run on the workers must be a non-empty list of '
                          'strings, got %r' % (command,))
    return command


def _check_env(env):
    env = dict(env or {})
    for name, value in env.items():
        if not isinstance(name, str) or not _ENV_NAME.match(name):
            raise LaunchError('environment variable name %r is not valid' % (name,))
        if name in MANAGED_ENV:
            raise LaunchError('%s is set by the launcher for each process; do not pass it '
                              '(use --interface for DMLC_INTERFACE)' % name)
        if not isinstance(value, str):
            raise LaunchError('environment variable %s must be a string, got %r' % (name, value))
    return env


def parse_env(items, environ=None):
    """Turn ``--env`` items into a dict.

    Parameters
    ----------
    items : list of str
        ``NAME=VALUE``, or ``NAME`` to pass on this machine's current value.
    environ : dict, optional
        Where bare names are looked up (default ``os.environ``).

    Returns
    -------
    dict
    """
    environ = os.environ if environ is None else environ
    env = {}
    for item in items or ():
        name, sep, value = item.partition('=')
        if not sep:
            if name not in environ:
                raise LaunchError('--env %s: no value given and %s is not set here' % (item, name))
            value = environ[name]
        env[name] = value
    return _check_env(env)


def parse_hostfile(path):
    """Read an ssh hostfile: one ``[user@]host[:ssh_port]`` per line.

    Blank lines and ``#`` comments are skipped. ``host`` is also what ps-lite
    uses, so it must be an IPv4 address every node can reach (best), or a DNS
    name that resolves to that network address on every node, the host itself
    included (not an ssh alias, not a name its own ``/etc/hosts`` maps to
    127.0.1.1). For names, the guard finds ``DMLC_NODE_HOST`` on the node and
    the scheduler listens on all interfaces.

    Returns
    -------
    list of Host
    """
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError as err:
        raise LaunchError('cannot read hostfile %r: %s' % (path, err.strerror))
    hosts = []
    for number, line in enumerate(lines, 1):
        text = line.split('#', 1)[0].strip()
        if not text:
            continue
        match = re.match(r'^(?:([^@\s:]+)@)?([^@\s:]+)(?::(\d+))?$', text)
        if match is None:
            raise LaunchError('hostfile %r line %d: expected [user@]host[:ssh_port], one host '
                              'per line, got %r' % (path, number, text))
        user, address, ssh_port = match.groups()
        if ssh_port is not None and not 0 < int(ssh_port) < 65536:
            raise LaunchError('hostfile %r line %d: ssh port %s is out of range'
                              % (path, number, ssh_port))
        hosts.append(Host(address, user, int(ssh_port) if ssh_port else None))
    if not hosts:
        raise LaunchError('hostfile %r lists no hosts' % (path,))
    return hosts


def _mpi_root(path):
    """The first host of an MPI hostfile (Open MPI ``host slots=N`` or MPICH ``host:N``)."""
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError as err:
        raise LaunchError('cannot read hostfile %r: %s' % (path, err.strerror))
    for line in lines:
        text = line.split('#', 1)[0].split()
        if text:
            return text[0].rsplit('@', 1)[-1].split(':', 1)[0]
    raise LaunchError('hostfile %r lists no hosts' % (path,))


def role_env(role, root_uri, root_port, num_workers, num_servers, node_host=None, interface=None):
    """The ps-lite variables of one process.

    Parameters
    ----------
    role : {'scheduler', 'server', 'worker'}
    root_uri : str
        Address of the scheduler (``DMLC_PS_ROOT_URI``).
    root_port : int
        The scheduler's port (``DMLC_PS_ROOT_PORT``).
    num_workers, num_servers : int
    node_host : str, optional
        The address peers use to reach this process (``DMLC_NODE_HOST``).
    interface : str, optional
        A network interface whose address ps-lite uses instead
        (``DMLC_INTERFACE``); overrides ``node_host``.

    Returns
    -------
    dict
    """
    if role not in ROLES:
        raise LaunchError('role must be one of %s, got %r' % (', '.join(ROLES), role))
    _check_counts(num_workers, num_servers)
    _check_port(root_port)
    env = {'DMLC_ROLE': role, 'DMLC_PS_ROOT_URI': str(root_uri),
           'DMLC_PS_ROOT_PORT': str(root_port), 'DMLC_NUM_SERVER': str(num_servers),
           'DMLC_NUM_WORKER': str(num_workers)}
    if interface:
        env['DMLC_INTERFACE'] = interface
    elif node_host:
        env['DMLC_NODE_HOST'] = node_host
    return env


def _is_ip(address):
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return False
    return True


def _placement(num_workers, num_servers, num_hosts):
    """(label, role, host index) of every process: scheduler on host 0, then round-robin."""
    roles = [('scheduler', 'scheduler', 0)]
    roles += [('server %d' % i, 'server', i % num_hosts) for i in range(num_servers)]
    roles += [('worker %d' % j, 'worker', j % num_hosts) for j in range(num_workers)]
    return roles


def free_port(host=''):
    """A TCP port free right now on ``host`` (all interfaces by default)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def local_processes(command, num_workers, num_servers=1, port=None, env=None, python=None,
                    grace=DEFAULT_GRACE):
    """The processes of a job on this machine, on 127.0.0.1.

    Parameters
    ----------
    command : list of str or str
        What each worker runs.
    num_workers, num_servers : int
    port : int, optional
        The scheduler's port (default: a free one).
    env : dict, optional
        Extra variables for every process.
    python : str, optional
        The interpreter of the guard, servers and scheduler (default: this one).
    grace : float
        Seconds between SIGTERM and SIGKILL when stopping a process group.

    Returns
    -------
    list of Process
    """
    command = _check_command(command)
    _check_counts(num_workers, num_servers)
    port = free_port() if port is None else port
    env = _check_env(env)
    python = python or sys.executable
    processes = []
    for label, role, _ in _placement(num_workers, num_servers, 1):
        target = command if role == 'worker' else [python, '-c', SERVER_CODE]
        proc_env = dict(env, **role_env(role, '127.0.0.1', port, num_workers, num_servers,
                                        node_host='127.0.0.1'))
        processes.append(Process(label, role, None, _guard_argv(python, target, grace), proc_env))
    return processes


def ssh_processes(command, hosts, num_workers, num_servers=1, port=DEFAULT_PORT, env=None,
                  cwd=None, python=None, interface=None, ssh='ssh',
                  ssh_options=DEFAULT_SSH_OPTIONS, grace=DEFAULT_GRACE):
    """The ssh commands of a cluster job (no process is started).

    Parameters
    ----------
    command : list of str or str
        What each worker runs, in ``cwd`` on its host.
    hosts : list of Host or str
        From :func:`parse_hostfile`; the scheduler runs on ``hosts[0]``.
    num_workers, num_servers : int
    port : int
        The scheduler's port on ``hosts[0]``.
    env : dict, optional
        Variables for every process, written on the remote command line.
    cwd : str, optional
        Remote working directory (default: this one).
    python : str, optional
        The remote interpreter (default: this one's path).
    interface : str, optional
        ``DMLC_INTERFACE`` for every process instead of ``DMLC_NODE_HOST``.
    ssh : str
        The ssh client.
    ssh_options : sequence of str
        Options before the destination.
    grace : float
        Seconds between SIGTERM and SIGKILL when a remote group is stopped.

    Returns
    -------
    list of Process
        ``argv`` is ``[ssh, *options, (-p port), destination, remote command]``.
    """
    command = _check_command(command)
    _check_counts(num_workers, num_servers)
    _check_port(port)
    env = _check_env(env)
    hosts = [Host(h, None, None) if isinstance(h, str) else Host(*h) for h in hosts or ()]
    if not hosts:
        raise LaunchError('the ssh launcher needs at least one host')
    cwd = cwd or os.getcwd()
    python = python or sys.executable
    processes = []
    for label, role, index in _placement(num_workers, num_servers, len(hosts)):
        host = hosts[index]
        target = command if role == 'worker' else [python, '-c', SERVER_CODE]
        numeric = _is_ip(host.address)
        variables = dict(env, **role_env(role, hosts[0].address, port, num_workers, num_servers,
                                         node_host=host.address if numeric else None,
                                         interface=interface))
        if role == 'scheduler' and not _is_ip(hosts[0].address):
            # ps-lite binds to numeric addresses only; this flag makes the scheduler bind 0.0.0.0.
            variables['DMLC_USE_KUBERNETES'] = '1'
        remote = ['env'] + ['%s=%s' % item for item in sorted(variables.items())]
        remote += _guard_argv(python, target, grace, cwd=cwd,
                              find_node_host=not numeric and not interface)
        argv = [ssh] + list(ssh_options)
        if host.ssh_port is not None:
            argv += ['-p', str(host.ssh_port)]
        destination = '%s@%s' % (host.user, host.address) if host.user else host.address
        argv += [destination, shlex.join(remote)]
        processes.append(Process(label, role, host.address, argv, {}))
    return processes


def mpi_command(command, hostfile, num_workers, num_servers=1, port=DEFAULT_PORT, env=None,
                cwd=None, python=None, interface=None, mpirun='mpirun',
                mpirun_args=DEFAULT_MPIRUN_ARGS, hostfile_option='--hostfile',
                grace=DEFAULT_GRACE):
    """The ``mpirun`` command of a cluster job (nothing is started).

    One ``mpirun`` starts ``1 + num_servers + num_workers`` ranks, all running
    the guard, which maps MPI rank 0 to the scheduler, ranks ``1..S`` to
    servers and the rest to workers. The scheduler's address is the first
    host of ``hostfile``; ``DMLC_NODE_HOST`` is found on each node as the
    source address of its route to the scheduler.

    Parameters
    ----------
    command : list of str or str
    hostfile : str
        Passed to ``mpirun --hostfile``; its first host runs rank 0.
    num_workers, num_servers : int
    port : int
        The scheduler's port.
    env : dict, optional
        Variables for every rank (written with ``env`` on the command line,
        which works with any MPI).
    cwd, python, interface, grace
        As in :func:`ssh_processes`.
    mpirun : str
        The MPI launcher.
    mpirun_args : sequence of str
        Extra options (default Open MPI's ``--map-by node``; none for MPICH,
        whose Hydra places ranks round-robin over the hostfile by itself).
    hostfile_option : str
        How ``mpirun`` is given the hostfile (``--hostfile`` for Open MPI,
        ``-f`` for MPICH's Hydra).

    Returns
    -------
    list of str
    """
    command = _check_command(command)
    _check_counts(num_workers, num_servers)
    _check_port(port)
    env = _check_env(env)
    root = _mpi_root(hostfile)
    variables = dict(env, **role_env('worker', root, port, num_workers, num_servers,
                                     interface=interface))
    del variables['DMLC_ROLE']
    argv = [mpirun, '-np', str(1 + num_servers + num_workers), hostfile_option, hostfile]
    argv += list(mpirun_args)
    argv += ['env'] + ['%s=%s' % item for item in sorted(variables.items())]
    return argv + _guard_argv(python or sys.executable, command, grace, cwd=cwd or os.getcwd(),
                              watch_stdin=False, mpi_servers=num_servers,
                              find_node_host=not interface)


def _exit_code(returncode):
    return 128 - returncode if returncode < 0 else returncode


def _describe(returncode):
    if returncode < 0:
        try:
            return 'signal %s' % signal.Signals(-returncode).name
        except ValueError:
            return 'signal %d' % -returncode
    return 'exit code %d' % returncode


def _group_alive(pgid):
    """Whether a process group has a member that is not a zombie."""
    if not os.path.isdir('/proc'):
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % entry) as f:
                fields = f.read().rsplit(')', 1)[1].split()
        except OSError:
            continue
        # fields: state, ppid, pgrp, ...; zombies are dead, just not reaped.
        if int(fields[2]) == pgid and fields[0] != 'Z':
            return True
    return False


class _Job:
    """Processes started here, their output relays, and their teardown."""

    def __init__(self, output):
        self.output = output
        self.lock = threading.Lock()
        self.entries = []  # (Process, Popen, relay thread)

    def say(self, text):
        self._write('[launch] %s\n' % text)

    def _write(self, text):
        with self.lock:
            try:
                self.output.write(text)
                self.output.flush()
            except (OSError, ValueError):
                pass  # a closed terminal must not stop the teardown

    def _relay(self, stream, label):
        prefix = '[%s] ' % label if label else ''
        for raw in iter(stream.readline, b''):
            text = raw.decode('utf-8', 'replace')
            self._write(prefix + (text if text.endswith('\n') else text + '\n'))
        stream.close()

    def start(self, proc):
        env = dict(os.environ, **proc.env)
        try:
            popen = subprocess.Popen(proc.argv, env=env, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        except OSError as err:
            raise LaunchError('cannot start %s: %r: %s' % (proc.label, proc.argv[0], err.strerror))
        relay = threading.Thread(target=self._relay, args=(popen.stdout, proc.label), daemon=True)
        relay.start()
        self.entries.append((proc, popen, relay))

    def watch(self, timeout, grace, signals):
        """Wait for the end or the first failure; return the job's exit code."""
        deadline = None if timeout is None else time.monotonic() + timeout
        workers_done = None
        while True:
            if signals:
                self.say('interrupted by %s: stopping all processes' % signal.Signals(signals[0]).name)
                return 128 + signals[0]
            for proc, popen, _ in self.entries:
                code = popen.poll()
                if code:
                    # ssh itself exits 255 when it cannot connect or log in.
                    why = ' (ssh to %s failed)' % proc.host if proc.host and code == 255 else ''
                    self.say('%s exited with %s%s: stopping all processes'
                             % (proc.label, _describe(code), why))
                    return _exit_code(code)
            codes = [popen.poll() for proc, popen, _ in self.entries if proc.role == 'worker']
            if all(code == 0 for code in codes):
                if all(popen.poll() is not None for _, popen, _ in self.entries):
                    return 0
                if workers_done is None:
                    workers_done = time.monotonic()
                elif time.monotonic() - workers_done > grace:
                    left = [p.label for p, popen, _ in self.entries if popen.poll() is None]
                    self.say('all workers finished; %s still running after %gs: stopping them'
                             % (', '.join(left), grace))
                    return 0
            if deadline is not None and time.monotonic() > deadline:
                self.say('timeout after %gs: stopping all processes' % timeout)
                return 124
            time.sleep(0.05)

    def stop(self, grace):
        """SIGTERM every group (and close the guards' stdin), SIGKILL what is left after ``grace``."""
        for _, popen, _ in self.entries:
            try:
                popen.stdin.close()
            except OSError:
                pass
            if _group_alive(popen.pid):
                try:
                    os.killpg(popen.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            for _, popen, _ in self.entries:
                popen.poll()
            if not any(_group_alive(popen.pid) for _, popen, _ in self.entries):
                break
            time.sleep(0.05)
        for _, popen, _ in self.entries:
            if _group_alive(popen.pid):
                try:
                    os.killpg(popen.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for _, popen, relay in self.entries:
            popen.wait()
            relay.join(5)


def _run(processes, timeout=None, grace=DEFAULT_GRACE, output=None):
    """Start ``processes``, supervise them, stop all of them; return the job's exit code."""
    if timeout is not None and timeout <= 0:
        raise LaunchError('timeout must be > 0 seconds, got %r' % (timeout,))
    job = _Job(output or sys.stdout)
    signals = []
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            previous[sig] = signal.signal(sig, lambda signum, frame: signals.append(signum))
    try:
        for proc in processes:
            if signals:
                break
            job.start(proc)
        return job.watch(timeout, grace, signals)
    finally:
        job.stop(grace)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def launch_local(command, num_workers, num_servers=1, env=None, timeout=None,
                 grace=DEFAULT_GRACE, port=None, python=None, output=None):
    """Run a kvstore job on this machine (127.0.0.1) and wait for it.

    Parameters
    ----------
    command : list of str or str
        What each worker runs (e.g. ``[sys.executable, 'train_imagenet.py',
        '--kvstore', 'dist_sync']``).
    num_workers, num_servers : int
    env : dict, optional
        Extra variables for every process (on top of this environment).
    timeout : float, optional
        Seconds after which everything is stopped (exit code 124).
    grace : float
        Seconds between SIGTERM and SIGKILL when stopping.
    port : int, optional
        The scheduler's port (default: a free one).
    python : str, optional
        Interpreter for the guard, servers and scheduler (default: this one).
    output : text stream, optional
        Where the prefixed output lines go (default ``sys.stdout``).

    Returns
    -------
    int
        0, or the first failing process's exit code (``128 + N`` for signal N).
    """
    processes = local_processes(command, num_workers, num_servers, port=port, env=env,
                                python=python, grace=grace)
    return _run(processes, timeout=timeout, grace=grace, output=output)


def launch_ssh(command, hosts, num_workers, num_servers=1, env=None, timeout=None,
               grace=DEFAULT_GRACE, port=DEFAULT_PORT, cwd=None, python=None, interface=None,
               ssh='ssh', ssh_options=DEFAULT_SSH_OPTIONS, output=None):
    """Run a kvstore job over ssh (see :func:`ssh_processes`) and wait for it.

    Returns
    -------
    int
        As :func:`launch_local`. A failing ssh client (exit 255: host down,
        authentication refused) counts as a failing process.
    """
    if isinstance(hosts, str):
        hosts = parse_hostfile(hosts)
    processes = ssh_processes(command, hosts, num_workers, num_servers, port=port, env=env,
                              cwd=cwd, python=python, interface=interface, ssh=ssh,
                              ssh_options=ssh_options, grace=grace)
    return _run(processes, timeout=timeout, grace=grace, output=output)


def launch_mpi(command, hostfile, num_workers, num_servers=1, env=None, timeout=None,
               grace=DEFAULT_GRACE, port=DEFAULT_PORT, cwd=None, python=None, interface=None,
               mpirun='mpirun', mpirun_args=DEFAULT_MPIRUN_ARGS, hostfile_option='--hostfile',
               output=None):
    """Run a kvstore job under one ``mpirun`` (see :func:`mpi_command`) and wait for it.

    Returns
    -------
    int
        ``mpirun``'s exit code (MPI stops every rank when one fails), or
        the launcher's own codes (timeout 124, interrupt ``128 + N``).
    """
    argv = mpi_command(command, hostfile, num_workers, num_servers, port=port, env=env, cwd=cwd,
                       python=python, interface=interface, mpirun=mpirun,
                       mpirun_args=mpirun_args, hostfile_option=hostfile_option, grace=grace)
    # The ranks' guards prefix their own lines; mpirun decides where each rank runs.
    return _run([Process('', 'worker', None, argv, {})], timeout=timeout, grace=grace, output=output)


def _format(proc):
    """A process as a shell line for ``--dry-run``, the guard program shown as ``$LAUNCH_GUARD``.

    An ssh command shows its remote command unquoted, as the remote shell
    receives it.
    """
    source = guard_source()

    def words(argv):
        return ['"$LAUNCH_GUARD"' if w == source else shlex.quote(w) for w in argv]

    shown = ['%s=%s' % (k, shlex.quote(v)) for k, v in sorted(proc.env.items())
             if os.environ.get(k) != v]
    if proc.host is not None:
        return ' '.join(shown + words(proc.argv[:-1]) + words(shlex.split(proc.argv[-1])))
    return ' '.join(shown + words(proc.argv))


_EPILOG = """\
examples:
  # one machine: 2 workers, 1 server, all on 127.0.0.1
  python -m gluon_asymmnet.launch -n 2 -s 1 -- python train_imagenet.py --kvstore dist_sync
  # a cluster over ssh (hostfile: one [user@]host[:ssh_port] per line)
  python -m gluon_asymmnet.launch -n 4 -s 4 --launcher ssh -H hosts --env OMP_NUM_THREADS=4 \\
      -- python train_imagenet.py --kvstore dist_device_sync --num-gpus 8
  # the same with Open MPI (rank 0 = scheduler on the hostfile's first host)
  python -m gluon_asymmnet.launch -n 4 -s 4 --launcher mpi -H hosts -- python train_imagenet.py ...
"""


def _parser():
    parser = argparse.ArgumentParser(
        prog='python -m gluon_asymmnet.launch', epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        usage='%(prog)s -n NUM_WORKERS [-s NUM_SERVERS] [--launcher local|ssh|mpi] '
              '[-H HOSTFILE] [--env K=V ...] [options] -- COMMAND...',
        description='Start an MXNet ps-lite kvstore job (scheduler, servers, workers) and stop '
                    'all of it when any process fails or the launcher is interrupted.')
    parser.add_argument('-n', '--num-workers', type=int, required=True,
                        help='number of worker processes (each runs COMMAND)')
    parser.add_argument('-s', '--num-servers', type=int, default=1,
                        help='number of kvstore servers (default 1)')
    parser.add_argument('--launcher', choices=LAUNCHERS, default='local',
                        help='local: all here on 127.0.0.1; ssh or mpi: on the hosts of -H')
    parser.add_argument('-H', '--hostfile', help='hosts for ssh/mpi; the first runs the scheduler')
    parser.add_argument('--env', action='append', default=[], metavar='NAME[=VALUE]',
                        help='a variable for every process (repeatable); NAME alone passes '
                             'its current value')
    parser.add_argument('--port', type=int,
                        help='scheduler port (default: a free port locally, %d for ssh/mpi)'
                             % DEFAULT_PORT)
    parser.add_argument('--interface', help='network interface ps-lite binds to on every node '
                                            '(DMLC_INTERFACE), e.g. eth0 or ib0')
    parser.add_argument('--python', help='interpreter on the nodes (default: this one, %s)'
                                         % sys.executable)
    parser.add_argument('--cwd', help='working directory on the nodes (default: this one)')
    parser.add_argument('--ssh', default='ssh', help='ssh client (default ssh)')
    parser.add_argument('--ssh-option', action='append', metavar='OPT',
                        help='replace the default ssh options %r (repeatable; write '
                             '--ssh-option=-oName=value)' % ' '.join(DEFAULT_SSH_OPTIONS))
    parser.add_argument('--mpirun', default='mpirun', help='MPI launcher (default mpirun)')
    parser.add_argument('--mpirun-args', default=' '.join(DEFAULT_MPIRUN_ARGS),
                        help='extra mpirun options, one string (default %(default)r; "" for MPICH)')
    parser.add_argument('--mpirun-hostfile-option', default='--hostfile',
                        help='how mpirun takes the hostfile (default %(default)s; -f for MPICH)')
    parser.add_argument('--timeout', type=float, help='stop everything after this many seconds')
    parser.add_argument('--grace', type=float, default=DEFAULT_GRACE,
                        help='seconds between SIGTERM and SIGKILL (default %(default)g)')
    parser.add_argument('--dry-run', action='store_true',
                        help='print the commands instead of running them')
    return parser


def main(argv=None):
    """Command line entry point; returns the job's exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = _parser()
    if '--' not in argv:
        if not {'-h', '--help'} & set(argv):
            parser.error('give the workers\' command after "--", e.g. -- python train_imagenet.py')
        parser.parse_args(argv)
    split = argv.index('--')
    args = parser.parse_args(argv[:split])
    command = argv[split + 1:]
    if not command:
        parser.error('no command after "--"')
    try:
        env = parse_env(args.env)
        if args.launcher == 'local':
            if args.hostfile:
                parser.error('-H/--hostfile is for --launcher ssh or mpi')
            processes = local_processes(command, args.num_workers, args.num_servers,
                                        port=args.port, env=env, python=args.python,
                                        grace=args.grace)
        else:
            if not args.hostfile:
                parser.error('--launcher %s needs -H/--hostfile' % args.launcher)
            port = DEFAULT_PORT if args.port is None else args.port
            if args.launcher == 'ssh':
                options = DEFAULT_SSH_OPTIONS if args.ssh_option is None else args.ssh_option
                processes = ssh_processes(command, parse_hostfile(args.hostfile), args.num_workers,
                                          args.num_servers, port=port, env=env, cwd=args.cwd,
                                          python=args.python, interface=args.interface,
                                          ssh=args.ssh, ssh_options=options, grace=args.grace)
            else:
                processes = [Process('', 'worker', None, mpi_command(
                    command, args.hostfile, args.num_workers, args.num_servers, port=port,
                    env=env, cwd=args.cwd, python=args.python, interface=args.interface,
                    mpirun=args.mpirun, mpirun_args=shlex.split(args.mpirun_args),
                    hostfile_option=args.mpirun_hostfile_option, grace=args.grace), {})]
        if args.dry_run:
            print('# LAUNCH_GUARD is the program `python -c "import gluon_asymmnet.launch as l; '
                  'print(l.guard_source())"` prints')
            for proc in processes:
                print('%s%s' % ('# %s\n' % proc.label if proc.label else '', _format(proc)))
            return 0
        return _run(processes, timeout=args.timeout, grace=args.grace)
    except LaunchError as err:
        parser.exit(2, '%s: error: %s\n' % (parser.prog, err))


if __name__ == '__main__':
    sys.exit(main())
