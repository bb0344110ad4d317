"""A model family and a constructor argument are each added in one place, and reach every command line.

A fresh interpreter adds a toy family (one registry entry) and a toy
argument (one :data:`gluon_asymmnet.model_flags.FLAGS` entry) before the
command lines are imported, as a new module and its entry would, then trains
it for an epoch on the bundled digits, resumes it with another value of the
argument (refused, naming it), evaluates and exports the checkpoint without
model flags (the run's record names the family and the argument), and reads
``train_imagenet.py --help``, ``eval.py --help`` and the export's ``--help``.
"""
import json
import os
import subprocess
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CHILD = textwrap.dedent('''
    import contextlib, io, json, sys
    from mxnet.gluon import nn
    from gluon_asymmnet import model_flags, registry

    class Toy(nn.HybridBlock):
        def __init__(self, depth, classes, **kwargs):
            super().__init__(**kwargs)
            with self.name_scope():
                self.features = nn.HybridSequential()
                for i in range(depth):
                    self.features.add(nn.Conv2D(4, 3, padding=1, in_channels=4 if i else 3), nn.Activation('relu'))
                self.features.add(nn.GlobalAvgPool2D())
                self.output = nn.Dense(classes, in_units=4)

        def hybrid_forward(self, F, x):
            return self.output(self.features(x))

    def toynet(depth=2, classes=1000, **kwargs):
        return Toy(depth, classes, **kwargs)

    # The two additions: one flag, one registry entry.
    model_flags.FLAGS['toy_depth'] = model_flags.Flag('toy_depth', ('--toy-depth',), 'depth', None, int,
                                                      'convolutions of the toy network')
    registry._MODELS = registry._registry(*registry._MODELS.values(),
                                          registry.ModelSpec('toynet', toynet, about='a toy'))

    from gluon_asymmnet.evaluation.cli import build_parser as eval_parser, main as eval_main
    from gluon_asymmnet.export.cli import build_parser as export_parser, main as export_main
    from gluon_asymmnet.training.cli import build_parser as train_parser, main as train_main, parse_args

    def run(main, argv):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as exit:
                code = exit.code
        return [code, out.getvalue(), err.getvalue()]

    folder = sys.argv[1]
    common = ['--save-dir', folder, '--batch-size', '64', '-j', '0', '--mode', 'imperative']
    found = {
        'help': {name: p().format_help() for name, p in (('train', train_parser), ('eval', eval_parser),
                                                           ('export', export_parser))},
        'kwargs': parse_args(['--model', 'toynet', '--toy-depth', '3']).model_kwargs,
        'train': run(train_main, ['--model', 'toynet', '--toy-depth', '1', '--num-epochs', '1'] + common),
        'resume': run(train_main, ['--model', 'toynet', '--toy-depth', '2', '--num-epochs', '2', '--resume']
                      + common),
    }
    params = sorted(f for f in __import__('os').listdir(folder) if f.endswith('-0.params'))[0]
    params = __import__('os').path.join(folder, params)
    found['eval'] = run(eval_main, ['--params', params, '--dataset', 'demo', '--no-progress'])
    found['export'] = run(export_main, ['--params', params, '--prefix', folder + '/toy', '--formats', 'symbol'])
    json.dump(found, sys.stdout)
''')


def test_a_toy_family_and_argument_reach_training_resume_eval_and_export(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=ROOT)
    run = subprocess.run([sys.executable, '-c', CHILD, str(tmp_path)], capture_output=True, text=True, cwd=ROOT,
                         env=env, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    found = json.loads(run.stdout)
    for name, text in found['help'].items():
        assert '--toy-depth' in text and 'toynet' in text, name
    assert found['kwargs'] == {'depth': 3, 'classes': 10}
    code, _, err = found['train']
    assert code == 0, err
    record = json.load(open(str(tmp_path / 'digits-toynet-0.json')))
    assert record['config']['model'] == 'toynet' and record['config']['toy_depth'] == 1
    code, _, err = found['resume']
    assert code == 2 and 'trained with toy_depth=1, this run has 2' in err, err
    code, out, err = found['eval']
    assert code == 0 and 'top1=' in out, err
    code, out, err = found['export']
    assert code == 0, err
    assert (tmp_path / 'toy-symbol.json').is_file()
