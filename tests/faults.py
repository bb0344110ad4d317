"""Fault injection for tests: Python in a subprocess, optionally over a tmpfs in a private mount namespace.

A small tmpfs is a full disk and a read-only one a read-only folder, for
root too (which ignores file permissions); ``unshare -m`` keeps the mounts
private to the child process.
"""
import os
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _env():
    return dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get('PYTHONPATH')])))


def python(code, *args, timeout=300):
    """Run ``code`` (dedented) in a fresh interpreter with ``args`` as ``sys.argv[1:]``."""
    return subprocess.run([sys.executable, '-c', textwrap.dedent(code)] + [str(a) for a in args],
                          capture_output=True, text=True, timeout=timeout, env=_env())


def _private_mounts_work():
    probe = 'd=$(mktemp -d) && mount -t tmpfs -o size=64k tmpfs "$d" && umount "$d"; r=$?; rmdir "$d"; exit $r'
    try:
        return subprocess.run(['unshare', '-m', 'sh', '-c', probe], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


needs_mounts = pytest.mark.skipif(not _private_mounts_work(),
                                  reason='needs `unshare -m` and tmpfs mounts (root or user namespaces)')


def python_with_mount(folder, options, code, *args, prepare='', timeout=300):
    """Run ``code`` as :func:`python` does, with a tmpfs (mount ``options``) on ``folder``.

    ``prepare`` is shell run after mounting, with the folder in ``$DIR``
    (e.g. copy a file in, then ``mount -o remount,ro "$DIR"``).
    """
    shell = 'export DIR="$2" && mount -t tmpfs -o "$1" tmpfs "$DIR" && %s shift 2 && exec "$@"' % (
        '{ %s; } &&' % prepare if prepare else '')
    return subprocess.run(['unshare', '-m', 'sh', '-c', shell, 'sh', options, str(folder), sys.executable, '-c',
                           textwrap.dedent(code)] + [str(a) for a in args],
                          capture_output=True, text=True, timeout=timeout, env=_env())


def serve_loopback(handler):
    """A threaded HTTP server on 127.0.0.1 (a free port) answering with ``handler``, serving from a daemon thread.

    Stop it with :func:`stop_loopback`."""
    import http.server
    import threading
    httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    httpd.daemon_threads = True
    httpd.thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    httpd.thread.start()
    return httpd


def stop_loopback(httpd):
    httpd.shutdown()
    httpd.server_close()
    httpd.thread.join(10)
