"""Run the processes of a job, relay their output, and stop all of them at the first failure.

The launcher stops everything at the first process that fails (or on
SIGINT/SIGTERM/SIGHUP, or at the timeout), and returns the first failing exit
code (``128 + N`` for a process killed by signal N, 124 for a timeout,
``128 + N`` when the launcher itself was interrupted by signal N). Output
lines are prefixed with the process's role and launch index (``[worker 1]``).
ps-lite's scheduler assigns ``kv.rank`` itself, so launch index and rank are
not necessarily equal.

Liveness (local processes, read from ``/proc``): a process stopped (SIGSTOP,
Ctrl-Z, a debugger) for ``liveness_timeout`` seconds, or a job none of whose
processes printed a line or used CPU time for that long, is stopped with a
message naming the silent process (exit code 124): a ``dist_sync`` job whose
worker is stopped otherwise waits for it forever, saying nothing. Jobs on
other hosts (ssh, mpirun) are not watched: their processes cannot be read
here, and silence alone is no proof.
"""
import os
import signal
import subprocess
import sys
import threading
import time

from .guard import DEFAULT_GRACE
from .placement import (DEFAULT_MPIRUN_ARGS, DEFAULT_PORT, DEFAULT_SSH_OPTIONS, LaunchError, Process,
                        local_processes, mpi_command, parse_hostfile, ssh_processes)

__all__ = ['DEFAULT_LIVENESS_TIMEOUT', 'run_processes', 'launch_local', 'launch_ssh', 'launch_mpi']

DEFAULT_LIVENESS_TIMEOUT = 120.0
# How often the liveness of the processes is read (a scan of /proc).
_LIVENESS_PERIOD = 0.5


def _exit_code(returncode):
    return 128 - returncode if returncode < 0 else returncode


def _describe(returncode):
    if returncode < 0:
        try:
            return 'signal %s' % signal.Signals(-returncode).name
        except ValueError:
            return 'signal %d' % -returncode
    return 'exit code %d' % returncode


def _group_members(pgid):
    """The ``/proc/PID/stat`` fields after the command name of each member of a process group.

    Fields: state, ppid, pgrp, session, tty, tpgid, flags, minflt, cminflt,
    majflt, cmajflt, utime, stime, ...
    """
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % entry) as f:
                fields = f.read().rsplit(')', 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            yield fields


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
    # Zombies are dead, just not reaped.
    return any(fields[0] != 'Z' for fields in _group_members(pgid))


def _group_activity(pgid):
    """``(CPU ticks used by a process group's members, whether one of them is stopped)``; None without /proc."""
    if not os.path.isdir('/proc'):
        return None
    ticks, stopped = 0, False
    for fields in _group_members(pgid):
        ticks += int(fields[11]) + int(fields[12])
        stopped = stopped or fields[0] in ('T', 't')
    return ticks, stopped


class _Liveness:
    """When each process last printed or computed, and since when it is stopped (module notes)."""

    def __init__(self, job, timeout):
        self.job, self.timeout = job, timeout
        self.ticks, self.stopped_since, self.next_scan = {}, {}, 0.0

    def check(self, now):
        """A message naming the silent process once the timeout has passed, else None."""
        if not self.timeout or now < self.next_scan:
            return None
        self.next_scan = now + _LIVENESS_PERIOD
        for index, (proc, popen, _) in enumerate(self.job.entries):
            activity = _group_activity(popen.pid) if proc.host is None and popen.poll() is None else None
            if activity is None:
                continue
            ticks, stopped = activity
            if ticks != self.ticks.get(index):
                self.ticks[index] = ticks
                self.job.active[index] = now
            if not stopped:
                self.stopped_since.pop(index, None)
            elif now - self.stopped_since.setdefault(index, now) >= self.timeout:
                return ('%s (pid %d) has been stopped (SIGSTOP, Ctrl-Z or a debugger) for %gs and the others wait '
                        'for it: stopping all processes' % (proc.label, popen.pid, self.timeout))
        running = [i for i, (_, popen, _) in enumerate(self.job.entries) if popen.poll() is None]
        local = all(proc.host is None and proc.label for proc, _, _ in self.job.entries)  # not ssh or mpirun
        if local and running and all(now - self.job.active[i] >= self.timeout for i in running):
            index = min(running, key=lambda i: self.job.active[i])
            proc, popen, _ = self.job.entries[index]
            return ('no process printed or computed for %gs; %s (pid %d) has been silent longest (%.0fs): stopping '
                    'all processes' % (self.timeout, proc.label, popen.pid, now - self.job.active[index]))
        return None


class _Job:
    """Processes started here, their output relays, and their teardown."""

    def __init__(self, output):
        self.output = output
        self.lock = threading.Lock()
        self.entries = []  # (Process, Popen, relay thread)
        self.active = []  # per entry: when it last printed or used CPU time (time.monotonic())

    def say(self, text):
        self._write('[launch] %s\n' % text)

    def _write(self, text):
        with self.lock:
            try:
                self.output.write(text)
                self.output.flush()
            except (OSError, ValueError):
                pass  # a closed terminal must not stop the teardown

    def _relay(self, stream, label, index):
        prefix = '[%s] ' % label if label else ''
        for raw in iter(stream.readline, b''):
            self.active[index] = time.monotonic()
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
        self.active.append(time.monotonic())
        relay = threading.Thread(target=self._relay, args=(popen.stdout, proc.label, len(self.entries)), daemon=True)
        self.entries.append((proc, popen, relay))
        relay.start()

    def watch(self, timeout, grace, signals, liveness_timeout=DEFAULT_LIVENESS_TIMEOUT):
        """Wait for the end or the first failure; return the job's exit code."""
        deadline = None if timeout is None else time.monotonic() + timeout
        workers_done = None
        liveness = _Liveness(self, liveness_timeout)
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
            silent = liveness.check(time.monotonic())
            if silent:
                self.say(silent)
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
                    os.killpg(popen.pid, signal.SIGCONT)  # a stopped process acts on SIGTERM once continued
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


def run_processes(processes, timeout=None, grace=DEFAULT_GRACE, output=None,
                  liveness_timeout=DEFAULT_LIVENESS_TIMEOUT):
    """Start ``processes``, supervise them, stop all of them; return the job's exit code.

    ``liveness_timeout``: seconds a process may stay stopped, or the whole job
    silent, before everything is stopped (module notes; 0 or None: never).
    """
    if timeout is not None and timeout <= 0:
        raise LaunchError('timeout must be > 0 seconds, got %r' % (timeout,))
    if liveness_timeout is not None and not liveness_timeout >= 0:
        raise LaunchError('liveness timeout must be >= 0 seconds (0: off), got %r' % (liveness_timeout,))
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
        return job.watch(timeout, grace, signals, liveness_timeout)
    finally:
        job.stop(grace)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def launch_local(command, num_workers, num_servers=1, env=None, timeout=None,
                 grace=DEFAULT_GRACE, port=None, python=None, output=None,
                 liveness_timeout=DEFAULT_LIVENESS_TIMEOUT):
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
    liveness_timeout : float
        Seconds a process may stay stopped, or the job silent (module notes).

    Returns
    -------
    int
        0, or the first failing process's exit code (``128 + N`` for signal N).
    """
    processes = local_processes(command, num_workers, num_servers, port=port, env=env,
                                python=python, grace=grace)
    return run_processes(processes, timeout=timeout, grace=grace, output=output,
                         liveness_timeout=liveness_timeout)


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
    return run_processes(processes, timeout=timeout, grace=grace, output=output)


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
    return run_processes([Process('', 'worker', None, argv, {})], timeout=timeout, grace=grace, output=output)
