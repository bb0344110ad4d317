"""Validation top-1 by epoch as a PNG, with the released run's curve for ImageNet runs."""
import csv
import os

__all__ = ['REFERENCE_CURVE', 'reference_curve', 'plot_curve']

# Columns of the authors' released AsymmNet-L 1.0 run (docs/design.md sections 4 and 5),
# shipped with the package because users do not have the reference folder.
REFERENCE_CURVE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'released_L1.0_curve.csv')


def reference_curve(path=REFERENCE_CURVE):
    """The released run per epoch.

    Returns
    -------
    dict
        ``epoch`` (list of int) and ``val_top1``, ``val_top5``, ``lr_at_batch_599``
        (lists of float), 360 entries each.
    """
    with open(path) as f:
        rows = list(csv.DictReader(line for line in f if not line.startswith('#')))
    curve = {'epoch': [int(r['epoch']) for r in rows]}
    for key in ('val_top1', 'val_top5', 'lr_at_batch_599'):
        curve[key] = [float(r[key]) for r in rows]
    return curve


def plot_curve(history, path, title, reference=False):
    """Write a PNG of validation top-1 by epoch.

    Parameters
    ----------
    history : list of dict
        One entry per epoch with ``epoch`` and ``top1`` (None: not validated).
    path : str
        Output PNG.
    title : str
        Plot title.
    reference : bool
        Also draw the released AsymmNet-L 1.0 ImageNet run.
    """
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=100)
    try:
        if reference:
            ref = reference_curve()
            ax.plot(ref['epoch'], ref['val_top1'], color='0.6', lw=1.2,
                    label='released AsymmNet-L 1.0 (best %.4f)' % max(ref['val_top1']))
        validated = [h for h in history if h['top1'] is not None]
        epochs = [h['epoch'] for h in validated]
        top1 = [h['top1'] for h in validated]
        ax.plot(epochs, top1, marker='o' if len(epochs) < 40 else None, ms=3, color='C0',
                label='this run (best %.4f)' % max(top1) if top1 else 'this run')
        ax.set_xlabel('epoch')
        ax.set_ylabel('validation top-1')
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(loc='lower right')
        fig.tight_layout()
        fig.savefig(path)
    finally:
        plt.close(fig)
    return path
