"""Where each process of a ps-lite job runs and with which environment: hosts, roles, commands.

Nothing is started here; the functions return the commands that
:mod:`launcher.supervise` runs.

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

Servers and the scheduler run ``python -c "import mxnet"``: MXNet enters its
server loop at import when ``DMLC_ROLE`` is ``server`` or ``scheduler`` and
exits when the workers are done (``mxnet/kvstore/kvstore_server.py``).
"""
import ipaddress
import os
import re
import shlex
import socket
import sys
from collections import namedtuple

from .guard import DEFAULT_GRACE, guard_argv

__all__ = ['LaunchError', 'Host', 'Process', 'ROLES', 'DEFAULT_PORT', 'DEFAULT_SSH_OPTIONS',
           'DEFAULT_MPIRUN_ARGS', 'MANAGED_ENV', 'parse_hostfile', 'parse_env', 'role_env', 'free_port',
           'local_processes', 'ssh_processes', 'mpi_command']

ROLES = ('scheduler', 'server', 'worker')
DEFAULT_PORT = 9091
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
        processes.append(Process(label, role, None, guard_argv(python, target, grace), proc_env))
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
        remote += guard_argv(python, target, grace, cwd=cwd,
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
    return argv + guard_argv(python or sys.executable, command, grace, cwd=cwd or os.getcwd(),
                              watch_stdin=False, mpi_servers=num_servers,
                              find_node_host=not interface)
