"""GluonCV's own scripts with the package's models: ``python -m gluon_asymmnet.with_gluoncv``.

GluonCV's pose and detection scripts build their network with
``gluoncv.model_zoo.get_model(name, ...)``. :func:`register_with_gluoncv`
puts every model name of this package in GluonCV's model zoo (its flat
``_models`` table, which ``get_model`` reads at each call), so that those
scripts, unchanged, build this package's models: ``train_simple_pose.py
--model mobile_pose_asymmnet_large``, ``train_center_net.py --network
asymmnet_large_duc``, ``train_yolo3.py --network asymmnet_large``. Names
GluonCV has too (``mobilenetv3_large``, ``mobile_pose_mobilenetv3_large``,
``mobilenetv2_1.0``, ...) then build this package's version of GluonCV's
network.

Importing this module changes nothing; registering is explicit.

The command line::

    python -m gluon_asymmnet.with_gluoncv [--backbone-params FILE] SCRIPT.py [ARGS...]

registers, then runs SCRIPT as ``__main__`` with ARGS, as ``python SCRIPT.py
ARGS`` would (``sys.argv``, ``sys.path[0]`` the script's folder, its exit
status). ``--backbone-params FILE`` makes ``pretrained_base=True`` (what the
training scripts ask for) load FILE instead of the model store's ImageNet
weights: a ``train_imagenet.py`` checkpoint, the released file or a GluonCV
file of the backbone.
"""
import argparse
import os
import runpy
import sys

__all__ = ['main', 'register_with_gluoncv']

PROGRAM = 'python -m gluon_asymmnet.with_gluoncv'

# Marks an error of one of our constructors, so that the command line reports it in one line.
_REFUSED_BY = '_gluon_asymmnet_model'


class _Constructor:
    """GluonCV's model-zoo entry for one of the package's names: ``gluon_asymmnet.get_model(name, **kwargs)``."""

    def __init__(self, name):
        self.name = name

    def __call__(self, **kwargs):
        from .downstream.backbone import current_backbone_params
        from .model_zoo import get_model, get_model_spec
        takes = get_model_spec(self.name).arguments.get('pretrained_base')
        given = current_backbone_params()
        if given is not None and takes is not None and not kwargs.get('pretrained'):
            pretrained_base = kwargs.get('pretrained_base', takes.default)
            if pretrained_base is False:
                print('%s: note: %s is built with pretrained_base=False, so the backbone parameters %s are not '
                      'loaded into it' % (PROGRAM, self.name, given), file=sys.stderr, flush=True)
        try:
            return get_model(self.name, **kwargs)
        except (ValueError, OSError) as err:
            setattr(err, _REFUSED_BY, self.name)
            raise

    def __repr__(self):
        return '<gluon_asymmnet model %s>' % self.name


def register_with_gluoncv(backbone_params=None):
    """Make ``gluoncv.model_zoo.get_model(name)`` build this package's model, for every model name of the package.

    Parameters
    ----------
    backbone_params : str, optional
        A parameter file of the backbone that ``pretrained_base=True`` then
        loads instead of the model store's ImageNet weights (a
        ``train_imagenet.py`` checkpoint, the released file, a GluonCV file:
        :func:`gluon_asymmnet.downstream.set_backbone_params`, process-wide);
        ``pretrained_base`` given as ``False`` or as a path is left as it is.
        None leaves that setting as it is.

    Returns
    -------
    list of str
        The names registered, sorted (GluonCV's ``mobilenetv2_1.0`` style
        aliases included); those GluonCV had already now build the package's
        version of its network.

    Raises
    ------
    gluon_asymmnet.downstream.BackboneError
        ``backbone_params`` is not a file.
    """
    if backbone_params is not None:
        from .downstream import set_backbone_params
        set_backbone_params(os.path.abspath(os.path.expanduser(os.fspath(backbone_params))))
    from gluoncv.model_zoo import model_zoo as gluoncv_zoo
    from .registry import _MODELS
    names = sorted(_MODELS)
    for name in names:
        gluoncv_zoo._models[name] = _Constructor(name)
    return names


def build_parser():
    """The argument parser of ``python -m gluon_asymmnet.with_gluoncv``."""
    parser = argparse.ArgumentParser(
        prog=PROGRAM, usage='%(prog)s [-h] [--backbone-params FILE] SCRIPT.py [ARGS...]',
        description="Run one of GluonCV's scripts (train_simple_pose.py, train_center_net.py, train_yolo3.py, "
                    "their validate/eval/demo scripts) unchanged, with every model of gluon_asymmnet in GluonCV's "
                    "model zoo: e.g. train_yolo3.py --network asymmnet_large. Options after SCRIPT.py are the "
                    "script's.")
    parser.add_argument('--backbone-params', metavar='FILE',
                        help='backbone parameter file that pretrained_base=True loads (train_imagenet.py checkpoint, '
                             'released or GluonCV file) instead of the model store\'s ImageNet weights')
    parser.add_argument('script', metavar='SCRIPT.py', nargs='?', help='the script to run as __main__')
    parser.add_argument('args', nargs=argparse.REMAINDER, metavar='ARGS', help="the script's arguments")
    return parser


def main(argv=None):
    """``python -m gluon_asymmnet.with_gluoncv``: register, then run the script; returns its exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)

    def fail(message):
        parser.exit(2, '%s: error: %s\n' % (PROGRAM, message))

    if args.script is None:
        fail('no script given (usage: %s [--backbone-params FILE] SCRIPT.py [ARGS...])' % PROGRAM)
    if not os.path.isfile(args.script):
        fail('script %s: no such file' % args.script)
    if args.backbone_params is not None and not os.path.isfile(os.path.expanduser(args.backbone_params)):
        fail('--backbone-params %s: no such file' % args.backbone_params)
    from .cpu import configure_omp_threads
    configure_omp_threads(PROGRAM)
    register_with_gluoncv(args.backbone_params)
    sys.argv[:] = [args.script] + args.args
    sys.path[0] = os.path.dirname(os.path.abspath(args.script))
    try:
        runpy.run_path(args.script, run_name='__main__')
    except SystemExit as stop:
        return stop.code
    except (ValueError, OSError) as err:
        name = getattr(err, _REFUSED_BY, None)
        if name is None:
            raise
        fail('%s: get_model(%r): %s' % (args.script, name, err))
    return 0


if __name__ == '__main__':
    from gluon_asymmnet.with_gluoncv import main as _main
    sys.exit(_main())
