"""CPU facts and the OpenMP thread count that importing gluon_asymmnet gives MXNet."""
import os
import subprocess
import sys

from gluon_asymmnet import cpu

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Two sockets, two cores each, two hyperthreads per core; VNNI on.
CPUINFO = []
for i, (socket, core) in enumerate([(0, 0), (0, 0), (0, 1), (0, 1), (1, 0), (1, 0), (1, 1), (1, 1)]):
    CPUINFO += ['processor\t: %d' % i, 'physical id\t: %d' % socket, 'core id\t\t: %d' % core,
                'flags\t\t: fpu sse2 avx2 avx512f avx512_vnni', '']


def test_physical_cores_and_vnni_from_cpuinfo(monkeypatch):
    monkeypatch.setattr(cpu, '_cpuinfo_lines', lambda: list(CPUINFO))
    assert cpu.physical_cores() == 4 and cpu.cpu_has_vnni()
    monkeypatch.setattr(cpu, '_cpuinfo_lines', lambda: [line.replace(' avx512_vnni', '') for line in CPUINFO])
    assert not cpu.cpu_has_vnni()
    monkeypatch.setattr(cpu, '_cpuinfo_lines', lambda: [])
    assert cpu.physical_cores() == (os.cpu_count() or 1) and not cpu.cpu_has_vnni()


PROBE = """
import ctypes, os, sys
%s
mx.nd.ones((2, 2)).asnumpy()
print(os.environ.get('OMP_NUM_THREADS'), ctypes.CDLL('libgomp.so.1').omp_get_max_threads())
"""


def _threads(imports, omp=None):
    env = {k: v for k, v in os.environ.items() if k != 'OMP_NUM_THREADS'}
    env['PYTHONPATH'] = ROOT
    if omp:
        env['OMP_NUM_THREADS'] = omp
    out = subprocess.run([sys.executable, '-c', PROBE % imports], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, universal_newlines=True, check=True).stdout.split()
    return out[0], int(out[1])


def test_import_gives_mxnet_every_physical_core_unless_told():
    cores = cpu.physical_cores()
    assert _threads('import gluon_asymmnet\nimport mxnet as mx') == (str(cores), cores)
    assert _threads('import gluon_asymmnet\nimport mxnet as mx', omp='1') == ('1', 1)
    # MXNet first: its own choice stands (half the processors, at least one).
    assert _threads('import mxnet as mx\nimport gluon_asymmnet')[0] == 'None'
