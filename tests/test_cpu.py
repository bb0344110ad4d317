"""CPU facts, and the OpenMP thread count that the command lines (not the import) give MXNet."""
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


def test_cpu_description_names_the_model_and_the_extensions(monkeypatch):
    monkeypatch.setattr(cpu, '_cpuinfo_lines', lambda: ['model name\t: AMD EPYC'] + list(CPUINFO))
    assert cpu.cpu_description() == 'AMD EPYC (AVX2, AVX-512 f/vnni), 4 cores'
    plain = [line.replace(' avx2 avx512f avx512_vnni', '') for line in CPUINFO]
    monkeypatch.setattr(cpu, '_cpuinfo_lines', lambda: plain)
    assert cpu.cpu_description() == 'unknown CPU (no AVX2), 4 cores'


PROBE = """
import ctypes, os, sys
%s
mx.nd.ones((2, 2)).asnumpy()
print(os.environ.get('OMP_NUM_THREADS'), ctypes.CDLL('libgomp.so.1').omp_get_max_threads(),
      any(m == 'mxnet' or m.startswith('mxnet.') for m in before))
"""


def _env(omp=None):
    env = {k: v for k, v in os.environ.items() if k != 'OMP_NUM_THREADS'}
    env['PYTHONPATH'] = ROOT
    if omp:
        env['OMP_NUM_THREADS'] = omp
    return env


def _threads(imports, omp=None):
    """(OMP_NUM_THREADS, MXNet's OpenMP threads, whether MXNet was loaded before ``import mxnet``) after ``imports``."""
    imports = imports.replace('import mxnet as mx', 'before = list(sys.modules)\nimport mxnet as mx')
    done = subprocess.run([sys.executable, '-c', PROBE % imports], env=_env(omp), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, check=True)
    out = done.stdout.split()
    return (out[0], int(out[1]), out[2] == 'True'), done.stderr


CONFIGURE = 'from gluon_asymmnet.cpu import configure_omp_threads\nconfigure_omp_threads("probe")\n'


def test_importing_the_package_changes_nothing_and_loads_no_mxnet():
    # MXNet first: its own choice stands (half the processors, at least one), and the line says so.
    mxnet_default, err = _threads('import mxnet as mx\n' + CONFIGURE)
    assert mxnet_default[0] == 'None' and err.strip() == (
        'probe: MXNet picks its OpenMP threads (it was imported before they could be set)')
    # The package imported first neither sets the variable nor starts MXNet.
    assert _threads('import gluon_asymmnet\nimport mxnet as mx')[0] == mxnet_default


def test_command_lines_give_mxnet_every_physical_core_unless_told():
    cores = cpu.physical_cores()
    found, err = _threads(CONFIGURE + 'import mxnet as mx')
    assert found == (str(cores), cores, False)
    assert err.strip() == 'probe: MXNet runs %d OpenMP thread%s (the physical cores; set OMP_NUM_THREADS to change)' \
        % (cores, '' if cores == 1 else 's')
    found, err = _threads(CONFIGURE + 'import mxnet as mx', omp='1')
    assert found == ('1', 1, False) and err.strip() == 'probe: MXNet runs 1 OpenMP thread (OMP_NUM_THREADS)'


def test_every_command_line_sets_the_threads_before_mxnet_and_says_so():
    """Each prints configure_omp_threads' line, which names a count only when MXNet was not imported yet.

    The benchmarks share bench_inference.py's three lines."""
    commands = {'eval.py': ['eval.py', '--help'], 'train_imagenet.py': ['train_imagenet.py', '--help'],
                'gluon_asymmnet.demo': ['-m', 'gluon_asymmnet.demo', '--help'],
                'bench_inference.py': [os.path.join('benchmarks', 'bench_inference.py'), '--help']}
    procs = {name: subprocess.Popen([sys.executable] + argv, cwd=ROOT, env=_env(), stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, universal_newlines=True)
             for name, argv in commands.items()}
    cores = cpu.physical_cores()
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0 and 'usage:' in out, (name, err[-2000:])
        assert '%s: MXNet runs %d OpenMP thread' % (name, cores) in err, (name, err[-2000:])


def test_a_threads_flag_sets_the_openmp_threads(monkeypatch):
    """bench_deploy.py and bench_downstream.py take --threads before MXNet starts (cpu.configure_omp_threads_from_flag)."""
    import io
    from gluon_asymmnet.cpu import configure_omp_threads_from_flag
    monkeypatch.setenv('OMP_NUM_THREADS', '2')
    said = io.StringIO()
    assert configure_omp_threads_from_flag('b.py', ['--rounds', '2', '--threads', '3'], said) == '3'
    assert said.getvalue() == 'b.py: MXNet runs 3 OpenMP threads (OMP_NUM_THREADS)\n'
    assert configure_omp_threads_from_flag('b.py', ['--rounds', '2'], io.StringIO()) == '3'
