"""Start MXNet ps-lite kvstore jobs on one machine or on a cluster (ssh, mpirun); ``launch.py`` is its command.

MXNet's bundled ``tools/launch.py`` (with ``dmlc_tracker``) crashes on Python
>= 3.9 and leaves its children running (docs/design.md section 7). This
launcher starts the scheduler, ``num_servers`` servers and ``num_workers``
workers of a ``dist_sync`` / ``dist_device_sync`` / ``dist_async`` job with
the ps-lite environment (``DMLC_ROLE``, ``DMLC_PS_ROOT_URI``,
``DMLC_PS_ROOT_PORT``, ``DMLC_NUM_SERVER``, ``DMLC_NUM_WORKER``, and
``DMLC_NODE_HOST`` or ``DMLC_INTERFACE``). It is a tool beside the model
package (standard library only; it never imports ``gluon_asymmnet``):

- :mod:`launcher.guard`: the program every process runs under, which stops
  the process's whole group when asked or when the launcher goes away;
- :mod:`launcher.placement`: hosts, roles, environment and the commands of
  the ``local``, ``ssh`` and ``mpi`` placements (nothing is started);
- :mod:`launcher.supervise`: starting the processes, relaying their output,
  stopping everything at the first failure;
- :mod:`launcher.cli`: the command line of ``launch.py``.
"""
from .guard import DEFAULT_GRACE, guard_source
from .placement import (DEFAULT_MPIRUN_ARGS, DEFAULT_PORT, DEFAULT_SSH_OPTIONS, Host, LaunchError, Process,
                        free_port, local_processes, mpi_command, parse_env, parse_hostfile, role_env,
                        ssh_processes)
from .supervise import launch_local, launch_mpi, launch_ssh, run_processes
from .cli import main

__all__ = ['LaunchError', 'Host', 'Process', 'DEFAULT_GRACE', 'DEFAULT_PORT', 'DEFAULT_SSH_OPTIONS',
           'DEFAULT_MPIRUN_ARGS', 'guard_source', 'parse_hostfile', 'parse_env', 'role_env', 'free_port',
           'local_processes', 'ssh_processes', 'mpi_command', 'run_processes', 'launch_local', 'launch_ssh',
           'launch_mpi', 'main']
