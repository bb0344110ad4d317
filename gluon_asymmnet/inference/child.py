"""Running a step of a backend's build in a fresh interpreter."""
import os
import subprocess
import sys

from .predictor import BackendError

__all__ = ['run_child']

_CHILD = """
import importlib, sys
print(getattr(importlib.import_module(sys.argv[1]), sys.argv[2])(*sys.argv[3:]))
"""


def run_child(function, args, what):
    """Run ``function(*args)`` (a module-level function of this package, string arguments) in a fresh
    interpreter and return the last line it printed.

    Converting to ONNX (MXNet's exporter) and quantizing (``quantize_net_v2``)
    leave the process they ran in slower: every MXNet operator there takes
    longer afterwards (cause not found; figures: ``benchmarks/README.md``).
    Doing both in child processes keeps the benchmark fair to the MXNet
    backends.

    Raises
    ------
    BackendError
        The child failed; the message names ``what`` and the child's last error line.
    """
    package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [package_root, os.environ.get('PYTHONPATH')])))
    done = subprocess.run([sys.executable, '-c', _CHILD, function.__module__, function.__name__]
                          + [str(a) for a in args], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    if done.returncode != 0:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        raise BackendError('%s failed in its child process: %s' % (what, lines[-1] if lines else
                                                                   'exit status %d' % done.returncode))
    return done.stdout.strip().splitlines()[-1]
