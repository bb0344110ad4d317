"""The command line of ``launch.py``: parse it, build the processes, print them or run them."""
import argparse
import os
import shlex
import sys

from .guard import DEFAULT_GRACE, guard_source
from .placement import (DEFAULT_MPIRUN_ARGS, DEFAULT_PORT, DEFAULT_SSH_OPTIONS, LaunchError, Process,
                        local_processes, mpi_command, parse_env, parse_hostfile, ssh_processes)
from .supervise import DEFAULT_LIVENESS_TIMEOUT, run_processes

__all__ = ['LAUNCHERS', 'main']

LAUNCHERS = ('local', 'ssh', 'mpi')


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
  python launch.py -n 2 -s 1 -- python train_imagenet.py --kvstore dist_sync
  # a cluster over ssh (hostfile: one [user@]host[:ssh_port] per line)
  python launch.py -n 4 -s 4 --launcher ssh -H hosts --env OMP_NUM_THREADS=4 \\
      -- python train_imagenet.py --kvstore dist_device_sync --num-gpus 8
  # the same with Open MPI (rank 0 = scheduler on the hostfile's first host)
  python launch.py -n 4 -s 4 --launcher mpi -H hosts -- python train_imagenet.py ...
"""


def _parser():
    parser = argparse.ArgumentParser(
        prog='python launch.py', epilog=_EPILOG,
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
    parser.add_argument('--liveness-timeout', type=float, default=DEFAULT_LIVENESS_TIMEOUT,
                        help='stop everything when a process has been stopped (SIGSTOP, a debugger), or no '
                             'process has printed or computed, for this many seconds (default %(default)g; 0: '
                             'never)')
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
            print('# LAUNCH_GUARD is the program `python -c "import launcher; print(launcher.guard_source())"` '
                  'prints (in the repository root)')
            for proc in processes:
                print('%s%s' % ('# %s\n' % proc.label if proc.label else '', _format(proc)))
            return 0
        return run_processes(processes, timeout=args.timeout, grace=args.grace,
                             liveness_timeout=args.liveness_timeout)
    except LaunchError as err:
        parser.exit(2, '%s: error: %s\n' % (parser.prog, err))

