"""The repository stands alone: nothing in it reads a path outside it, and its tests run from a bare copy."""
import os
import re
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT

# Paths that leave the repository: the reference folder that once sat beside it, the parent of the
# repository root, and any climb of two levels. (Written so that this file does not match itself.)
OUTSIDE = [re.compile(p) for p in (
    r'\.\.[/\\]' + 'shared', 'shared' + r'[/\\]reference', r"""['"]""" + 'shared' + r"""['"]""",
    r'dirname\(\s*ROOT\s*\)', r'\.\.[/\\]\.\.', r'os\.pardir')]


def tracked_files():
    """The repository's files: git's list when it is a checkout, else every file but caches and the venv."""
    try:
        out = subprocess.run(['git', '-C', ROOT, 'ls-files', '-z'], capture_output=True, check=True, timeout=60)
        files = [f for f in out.stdout.decode().split('\0') if f]
    except (OSError, subprocess.SubprocessError):
        files = []
        for top, dirs, names in os.walk(ROOT):
            dirs[:] = [d for d in dirs if d not in ('.git', '.venv', '__pycache__', '.pytest_cache', 'build')]
            files += [os.path.relpath(os.path.join(top, n), ROOT) for n in names]
    return [f for f in files if os.path.isfile(os.path.join(ROOT, f))]


def test_no_file_names_a_path_outside_the_repository():
    found = []
    for rel in tracked_files():
        if rel == os.path.join('tests', 'test_standalone.py'):
            continue
        with open(os.path.join(ROOT, rel), 'rb') as f:
            data = f.read()
        if b'\0' in data:
            continue
        for n, line in enumerate(data.decode('utf-8', 'replace').splitlines(), 1):
            if any(p.search(line) for p in OUTSIDE):
                found.append('%s:%d: %s' % (rel, n, line.strip()))
    assert not found, 'paths outside the repository:\n' + '\n'.join(found)


def test_tests_run_from_a_bare_copy(tmp_path):
    """A copy of the tracked files with nothing beside it collects every test and reproduces the reference data."""
    copy = tmp_path / 'repo'
    for rel in tracked_files():
        target = copy / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(os.path.join(ROOT, rel), str(target))
    assert sorted(os.listdir(str(tmp_path))) == ['repo']
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONDONTWRITEBYTECODE='1')
    env.pop('PYTHONPATH', None)
    command = [sys.executable, '-m', 'pytest', '-q', '-p', 'no:xdist', '-p', 'no:cacheprovider']
    collected = subprocess.run(command + ['--collect-only', 'tests'], cwd=str(copy), env=env,
                               capture_output=True, text=True, timeout=600)
    assert collected.returncode == 0, collected.stdout[-3000:] + collected.stderr[-3000:]
    assert re.search(r'\d+ tests collected', collected.stdout), collected.stdout[-1000:]
    ran = subprocess.run(command + ['tests/test_models.py', 'tests/test_schedule.py', '-k',
                                    'released_logits or counts_csv or structural_keys or packaged_curve'],
                         cwd=str(copy), env=env, capture_output=True, text=True, timeout=600)
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    passed = re.search(r'(\d+) passed', ran.stdout)
    assert passed and int(passed.group(1)) >= 26 and 'skipped' not in ran.stdout, ran.stdout[-1000:]
