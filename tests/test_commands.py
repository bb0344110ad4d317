"""What the README and docs/ show holds: every flag a shown command uses is one its command has (the commands' work
is tested elsewhere), the Quick start runs as written with its shown values, and every link into the repository
resolves, anchors included."""
import ast
import functools
import os
import re
import shlex
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The pages whose shell blocks show this repository's commands (docs/flags.md's are tested by test_flags.py).
PAGES = ['README.md', 'docs/training.md', 'docs/deployment.md', 'docs/distributed.md']
# The released checkpoint the Quick start loads; the test stands in a file of random weights for it.
RELEASED = '0.7542-imagenet-modifiedv3-358-best.params'


def _run(args, cwd=ROOT):
    return subprocess.run([sys.executable] + args, cwd=cwd, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=ROOT))


@functools.lru_cache(maxsize=None)
def _help_text(command):
    done = _run(list(command) + ['--help'])
    assert done.returncode == 0, done.stderr
    return done.stdout


def _help(command):
    return _help_text(tuple(command))


@pytest.mark.parametrize('command, expected', [
    (['-m', 'gluon_asymmnet.pack'], 'usage: python -m gluon_asymmnet.pack'),   # the alias of data/pack.py
    (['launch.py'], 'usage: python launch.py -n NUM_WORKERS'),
    (['train_imagenet.py'], '--recipe {demo,released}'),
    (['eval.py'], '--corrected-first-block'),
    (['-m', 'gluon_asymmnet.export'], '--width-scale WIDTH_SCALE, --multiplier WIDTH_SCALE'),
])
def test_command_help(command, expected):
    assert expected in _help(command)


def _code_blocks(language, page='README.md'):
    """The fenced code blocks of ``page`` opened with ```language ('' for a bare fence)."""
    blocks, current, keep, indent = [], None, False, 0
    with open(os.path.join(ROOT, page)) as f:
        for line in f:
            if line.strip().startswith('```'):
                if current is None:
                    current, keep = [], line.strip()[3:].strip() == language
                    indent = len(line) - len(line.lstrip())   # a fence inside a list item
                else:
                    if keep:
                        blocks.append(''.join(current))
                    current = None
            elif current is not None:
                current.append(line[indent:])
    return blocks


def _shown_commands(page):
    """Every ``python ...`` command of ``page``'s shell blocks as (command, flags), launch.py's inner one too."""
    commands = []
    for block in _code_blocks('', page):
        for line in block.replace('\\\n', ' ').splitlines():
            words = shlex.split(line.split('#')[0])
            while words and words[0] == 'python':
                inner = words.index('--') if '--' in words else len(words)
                command = words[1:3] if words[1] == '-m' else words[1:2]
                commands.append((command, [w.strip('[]').split('=')[0] for w in words[len(command) + 1:inner]
                                           if w.strip('[]').startswith('--')]))
                words = words[inner + 1:]
    return commands


def test_readme_shows_one_command_of_each_script():
    assert {' '.join(c) for c, _ in _shown_commands('README.md')} == {
        'train_imagenet.py', 'eval.py', '-m gluon_asymmnet.export', 'launch.py'}


@pytest.mark.parametrize('page', PAGES)
def test_shown_commands_use_flags_their_command_has(page):
    commands = _shown_commands(page)
    assert commands
    for command, flags in commands:
        text = _help(command)
        for flag in flags:
            assert re.search(r'(?<![\w-])%s(?![\w-])' % re.escape(flag), text), \
                '%s: %s has no %s' % (page, ' '.join(command), flag)


def _quick_start():
    """The README's Python block, each ``ga.f(...)  # literal`` line turned into an assertion of that value."""
    (block,) = _code_blocks('python')
    lines = []
    for line in block.splitlines():
        call = re.match(r'^(ga\.\w+\(.*\))\s+# (.+)$', line)
        try:
            lines.append('assert %s == %r' % (call.group(1), ast.literal_eval(call.group(2))) if call else line)
        except (ValueError, SyntaxError):
            lines.append(line)
    return '\n'.join(lines)


def test_readme_quick_start_runs_as_written(tmp_path):
    """With random weights saved under the released file's name (the real file is not downloaded)."""
    code = _quick_start()
    assert RELEASED in code and 'assert ga.profile(net) ==' in code and 'assert ga.get_model_list() ==' in code
    save = ("import gluon_asymmnet as ga; net = ga.get_model('asymmnet_large'); net.initialize(); "
            "net.save_parameters(%r)" % RELEASED)
    for program in (save, code):
        done = _run(['-c', program], cwd=str(tmp_path))
        assert done.returncode == 0, done.stderr


def _anchors(path):
    """GitHub's anchors of a Markdown file's headings."""
    with open(path) as f:
        headings = [line.lstrip('#').strip() for line in f if line.startswith('#')]
    return {re.sub(r'[^\w\- ]', '', h.lower()).replace(' ', '-') for h in headings}


@pytest.mark.parametrize('page', ['README.md', 'benchmarks/README.md'] + sorted(
    os.path.join('docs', name) for name in os.listdir(os.path.join(ROOT, 'docs')) if name.endswith('.md')))
def test_relative_links_and_anchors_resolve(page):
    """A link into the repository names a file that exists and, with #anchor, a heading it has."""
    with open(os.path.join(ROOT, page)) as f:
        links = re.findall(r'\]\(([^)\s]+)\)', f.read())
    for link in links:
        if re.match(r'\w+://', link):
            continue
        target, _, anchor = link.partition('#')
        path = os.path.normpath(os.path.join(ROOT, os.path.dirname(page), target)) if target else \
            os.path.join(ROOT, page)
        assert os.path.exists(path), '%s: %s does not exist' % (page, link)
        assert not anchor or anchor in _anchors(path), '%s: %s has no heading #%s' % (page, target, anchor)


@pytest.mark.parametrize('script', sorted(f for f in os.listdir(os.path.join(ROOT, 'benchmarks')) if f.endswith('.py')))
def test_benchmark_scripts_import_names_that_exist(script):
    """A module that moves must take the benchmarks along (they are run by hand, not by the suite)."""
    import importlib
    with open(os.path.join(ROOT, 'benchmarks', script)) as f:
        tree = ast.parse(f.read())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or '').startswith('gluon_asymmnet'):
            module = importlib.import_module(node.module)
            for alias in node.names:
                assert hasattr(module, alias.name) or importlib.util.find_spec(
                    '%s.%s' % (node.module, alias.name)), '%s: from %s import %s' % (script, node.module, alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith('gluon_asymmnet'):
                    importlib.import_module(alias.name)
