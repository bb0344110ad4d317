"""Fused CPU operators for the inference graphs (``fastops.cc``), built on first use.

MXNet 1.9.1 runs its element-wise operators as scalar loops: hard swish
(``hard_sigmoid`` + ``elemwise_mul``) and the squeeze-and-excitation rescale
(``broadcast_mul``) take several times as long as one pass over the data.
``fastops.cc`` implements them as one vectorised, OpenMP-parallel pass each,
operators of an MXNet operator library (``mxnet/lib_api.h``), for
AsymmNet-L's fused inference graph (``benchmarks/bench_fastops.py`` measures
what they buy; figures in ``benchmarks/README.md``):

- ``ga_hard_swish(x)``: ``x * hard_sigmoid(x, alpha=1/6, beta=0.5)``,
  bit-identical to MXNet's;
- ``ga_channel_scale(x, s)``: ``x`` (N, C, H, W) times ``s`` (N, C, 1, 1),
  bit-identical to ``broadcast_mul``;
- ``ga_global_avg_pool(x)``: the mean over H and W, summed in double (within
  float32 rounding of ``Pooling``). Their outputs are in plain layout, for
  which oneDNN's pooling runs a slower kernel.

:func:`load` compiles the source with the C++ compiler (``$CXX``, else
``c++``) against the headers that ship in MXNet's wheel, once per source and
MXNet version, into ``$MXNET_HOME/gluon_asymmnet`` (default
``~/.mxnet/gluon_asymmnet``), and loads it into MXNet. ``make setup`` builds it
(``python -m gluon_asymmnet.fastops``). Where that folder cannot be written
(a read-only ``MXNET_HOME``), the library is built in the user's cache folder
(``$XDG_CACHE_HOME``, default ``~/.cache``, then the temporary folder), and a
library already built in any of them is used.
"""
import hashlib
import os
import shutil
import subprocess
import tempfile
import threading

import mxnet as mx

from ..files import folder_problem
from ..home import mxnet_home

__all__ = ['FastOpsError', 'OPS', 'SOURCE', 'cache_dir', 'library_path', 'build', 'load', 'loaded']

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'fastops.cc')
OPS = ('ga_hard_swish', 'ga_channel_scale', 'ga_global_avg_pool')
# Portable code (no -march): the cache may be shared by machines of different CPUs.
# -fno-trapping-math lets the clamps vectorise; -ffp-contract=off keeps MXNet's rounding.
CXXFLAGS = ['-shared', '-fPIC', '-std=c++17', '-O3', '-fno-trapping-math', '-ffp-contract=off', '-fopenmp']

_LOCK = threading.Lock()
_LOADED = []


class FastOpsError(RuntimeError):
    """The operator library could not be built or loaded."""


def cache_dir():
    """``$MXNET_HOME/gluon_asymmnet`` (default ``~/.mxnet/gluon_asymmnet``)."""
    return mxnet_home('gluon_asymmnet')


def _mxnet_dir():
    return os.path.dirname(os.path.abspath(mx.__file__))


def library_path(folder=None):
    """Where the library for this source, MXNet version and flags is (or will be) built."""
    digest = hashlib.sha1()
    with open(SOURCE, 'rb') as f:
        digest.update(f.read())
    digest.update(('%s %s' % (mx.__version__, ' '.join(CXXFLAGS))).encode())
    return os.path.join(folder or cache_dir(), 'fastops-%s.so' % digest.hexdigest()[:12])


def _fallbacks():
    """Writable places for the library when ``$MXNET_HOME`` is not: the user's cache folder, the temporary one."""
    cache = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
    return [os.path.join(cache, 'gluon_asymmnet'),
            os.path.join(tempfile.gettempdir(), 'gluon_asymmnet-%d' % os.getuid())]


def _build_path(folder):
    """The library's path: already built in ``folder`` (default: the cache, then its fallbacks) or to be built there."""
    if folder is not None:
        problem = None if os.path.isfile(library_path(folder)) else folder_problem(folder)
        if problem:
            raise FastOpsError('cannot build %s into %s: %s; give a folder you can write'
                               % (os.path.basename(SOURCE), folder, problem))
        return library_path(folder)
    candidates = [cache_dir()] + _fallbacks()
    for where in candidates:
        if os.path.isfile(library_path(where)):
            return library_path(where)
    problems = []
    for where in candidates:
        problem = folder_problem(where)
        if problem is None:
            return library_path(where)
        problems.append(problem)
    raise FastOpsError('cannot build %s: no folder to build it in can be written (%s); set MXNET_HOME (or '
                       'XDG_CACHE_HOME) to a folder you can write' % (os.path.basename(SOURCE), '; '.join(problems)))


def build(folder=None, compiler=None):
    """Compile ``fastops.cc`` unless already built; return the library's path.

    ``folder`` defaults to :func:`cache_dir`, or a writable fallback when that
    cannot be written (module notes). Written to a temporary file and renamed
    into place, so concurrent builds (test workers, training processes) never
    load a half-written file.
    """
    path = _build_path(folder)
    if os.path.isfile(path):
        return path
    include = os.path.join(_mxnet_dir(), 'include')
    lib_api = os.path.join(_mxnet_dir(), 'src', 'lib_api.cc')
    if not (os.path.isfile(os.path.join(include, 'mxnet', 'lib_api.h')) and os.path.isfile(lib_api)):
        raise FastOpsError('cannot build %s: MXNet %s at %s ships no include/mxnet/lib_api.h and src/lib_api.cc'
                           % (os.path.basename(SOURCE), mx.__version__, _mxnet_dir()))
    compiler = compiler or os.environ.get('CXX') or 'c++'
    if shutil.which(compiler) is None:
        raise FastOpsError('cannot build %s: no C++ compiler %r on PATH (set CXX, or install g++)'
                           % (SOURCE, compiler))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix='.so', dir=os.path.dirname(path))
    os.close(fd)
    cmd = [compiler] + CXXFLAGS + ['-I', include, SOURCE, lib_api, '-o', tmp]
    try:
        done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
        if done.returncode != 0:
            tail = '\n'.join(done.stdout.strip().splitlines()[-5:])
            raise FastOpsError('building %s failed (exit status %d):\n%s\n%s'
                               % (SOURCE, done.returncode, ' '.join(cmd), tail))
        os.chmod(tmp, 0o755)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def load(folder=None, compiler=None):
    """Build (if needed) and load the library into MXNet, once per process; return its path.

    Afterwards ``mx.nd`` and ``mx.sym`` have the operators of :data:`OPS`.
    """
    with _LOCK:
        if _LOADED:
            return _LOADED[0]
        path = build(folder, compiler)
        try:
            mx.library.load(path, verbose=False)
        except mx.base.MXNetError as err:
            raise FastOpsError('loading %s into MXNet %s failed: %s'
                               % (path, mx.__version__, str(err).strip().splitlines()[-1])) from err
        missing = [op for op in OPS if not hasattr(mx.sym, op)]
        if missing:
            raise FastOpsError('%s loaded, but MXNet lacks its operators %s' % (path, ', '.join(missing)))
        _LOADED.append(path)
        return path


def loaded():
    """Whether :func:`load` has loaded the library into this process."""
    return bool(_LOADED)
