"""CPU facts the backends need, and MXNet's OpenMP thread count. Imports nothing heavy.

MXNet 1.9.1, when ``OMP_NUM_THREADS`` is unset, runs its OpenMP (and so
oneDNN) on half of the processors, assuming two hyperthreads per core. On a
machine without them, a VM's vCPUs often, that is half the cores: on a
2-core AMD EPYC it used one thread (``benchmarks/bench_fastops.py`` measures
what that costs). MXNet reads the variable once, when it is imported. The
command lines of the project (``eval.py``, ``train_imagenet.py``,
``python -m gluon_asymmnet.demo``, the benchmarks) therefore call
:func:`configure_omp_threads` before they import MXNet: it sets
``OMP_NUM_THREADS`` to the physical core count unless it is already set, and
prints what MXNet will use. Importing ``gluon_asymmnet`` changes nothing.
"""
import os
import sys

__all__ = ['physical_cores', 'cpu_has_vnni', 'cpu_description', 'set_default_omp_threads', 'configure_omp_threads']

# The vector extensions that decide oneDNN's kernels: (shown as, /proc/cpuinfo flag).
_EXTENSIONS = (('AVX2', 'avx2'), ('FMA', 'fma'), ('AVX-VNNI', 'avx_vnni'), ('AMX', 'amx_int8'))
_AVX512 = (('f', 'avx512f'), ('bw', 'avx512bw'), ('vl', 'avx512vl'), ('vnni', 'avx512_vnni'), ('bf16', 'avx512_bf16'))


def _cpuinfo_lines():
    try:
        with open('/proc/cpuinfo') as f:
            return f.read().splitlines()
    except OSError:
        return []


def physical_cores():
    """Number of physical CPU cores (logical CPUs when the topology is unknown)."""
    cores = set()
    physical = core = None
    for line in _cpuinfo_lines() + ['']:
        key, _, value = line.partition(':')
        key = key.strip()
        if key == 'physical id':
            physical = value.strip()
        elif key == 'core id':
            core = value.strip()
        elif not key and core is not None:
            cores.add((physical, core))
            physical = core = None
    return len(cores) or os.cpu_count() or 1


def _cpu_flags():
    for line in _cpuinfo_lines():
        if line.startswith('flags'):
            return set(line.partition(':')[2].split())
    return set()


def cpu_has_vnni():
    """Whether the CPU has VNNI (AVX512-VNNI or AVX-VNNI) int8 dot-product instructions (Linux flags)."""
    return bool(_cpu_flags() & {'avx512_vnni', 'avx_vnni', 'amx_int8'})


def cpu_description():
    """``'AMD EPYC (AVX2, FMA, AVX-512 f/bw/vl/vnni/bf16), 2 cores'``: the CPU a benchmark's figures
    were measured on, with the vector extensions that decide oneDNN's kernels (Linux /proc/cpuinfo)."""
    name = next((line.partition(':')[2].strip() for line in _cpuinfo_lines() if line.startswith('model name')),
                'unknown CPU')
    flags = _cpu_flags()
    ext = [shown for shown, flag in _EXTENSIONS if flag in flags]
    avx512 = [shown for shown, flag in _AVX512 if flag in flags]
    if avx512:
        ext.append('AVX-512 ' + '/'.join(avx512))
    return '%s (%s), %d cores' % (name, ', '.join(ext) or 'no AVX2', physical_cores())


def set_default_omp_threads():
    """Set ``OMP_NUM_THREADS`` to :func:`physical_cores` if it is unset and MXNet is not yet imported.

    Returns the value in force (None when MXNet was imported first with it unset:
    MXNet has then chosen already).
    """
    if 'OMP_NUM_THREADS' not in os.environ and 'mxnet' not in sys.modules:
        os.environ['OMP_NUM_THREADS'] = str(physical_cores())
    return os.environ.get('OMP_NUM_THREADS')


def configure_omp_threads(program, stream=None):
    """What a command line calls before it imports MXNet: :func:`set_default_omp_threads`, then one
    line on ``stream`` (default stderr) that says how many OpenMP threads MXNet uses and why.

    Returns the value of ``OMP_NUM_THREADS`` in force (None: MXNet chose).
    """
    given = os.environ.get('OMP_NUM_THREADS')
    threads = set_default_omp_threads()
    if threads is None:
        say, why = 'MXNet picks its OpenMP threads', 'it was imported before they could be set'
    else:
        say = 'MXNet runs %s OpenMP thread%s' % (threads, '' if threads == '1' else 's')
        why = 'OMP_NUM_THREADS' if given is not None else 'the physical cores; set OMP_NUM_THREADS to change'
    print('%s: %s (%s)' % (program, say, why), file=stream or sys.stderr, flush=True)
    return threads


def configure_omp_threads_from_flag(program, argv=None, stream=None):
    """:func:`configure_omp_threads` for a script with a ``--threads N`` flag (read from ``argv``, default
    ``sys.argv``, before the script parses it): N, when given, sets ``OMP_NUM_THREADS`` first."""
    import argparse
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument('--threads', type=int)
    threads = pre.parse_known_args(sys.argv[1:] if argv is None else argv)[0].threads
    if threads:
        os.environ['OMP_NUM_THREADS'] = str(threads)
    return configure_omp_threads(program, stream)
