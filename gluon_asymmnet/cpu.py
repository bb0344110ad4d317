"""CPU facts the backends need, and MXNet's OpenMP thread count. Imports nothing heavy.

MXNet 1.9.1, when ``OMP_NUM_THREADS`` is unset, runs its OpenMP (and so
oneDNN) on half of the processors, assuming two hyperthreads per core. On a
machine without them, a VM's vCPUs often, that is half the cores: on a
2-core AMD EPYC it used one thread (AsymmNet-L fused inference at batch 32:
380 ms on one thread, 240 ms on two; ``benchmarks/bench_fastops.py``).
:func:`set_default_omp_threads`, called when ``gluon_asymmnet`` is imported
before MXNet, sets ``OMP_NUM_THREADS`` to the physical core count unless it
is already set.
"""
import os
import sys

__all__ = ['physical_cores', 'cpu_has_vnni', 'set_default_omp_threads']


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


def cpu_has_vnni():
    """Whether the CPU has VNNI (AVX512-VNNI or AVX-VNNI) int8 dot-product instructions (Linux flags)."""
    for line in _cpuinfo_lines():
        if line.startswith('flags'):
            return bool(set(line.partition(':')[2].split()) & {'avx512_vnni', 'avx_vnni', 'amx_int8'})
    return False


def set_default_omp_threads():
    """Set ``OMP_NUM_THREADS`` to :func:`physical_cores` if it is unset and MXNet is not yet imported.

    Returns the value in force (None when MXNet was imported first with it unset:
    MXNet has then chosen already).
    """
    if 'OMP_NUM_THREADS' not in os.environ and 'mxnet' not in sys.modules:
        os.environ['OMP_NUM_THREADS'] = str(physical_cores())
    return os.environ.get('OMP_NUM_THREADS')
