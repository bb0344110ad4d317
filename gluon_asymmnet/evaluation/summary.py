"""MACs and parameters of one configuration or of the whole grid (``counts.csv``'s and MobileNetV2's), with published
figures."""
import json
import os
import re

from ..complexity import format_table, profile
from ..model_store import pretrained_entries
from ..model_zoo import get_model, get_model_list, get_model_spec
from .errors import EvalError

__all__ = ['SUMMARY_RATES', 'published_figures', 'summary_rows', 'format_summary', 'layer_table']

# The rates of counts.csv's grid (docs/design.md section 3); its widths are each model's (ModelSpec.widths).
SUMMARY_RATES = (0, 1, 2)
_PUBLISHED = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'published.json')


def published_figures():
    """The paper's figures (``published.json``) and the store's checkpoint figures.

    Returns
    -------
    dict
        ``paper``: ``{(model, multiplier, asymmrate): {top1, params_paper, madds}}``;
        ``checkpoints``: ``{(model, multiplier, asymmrate): [(entry name, top1, top5), ...]}``
        (``asymmrate`` 0 for MobileNetV3 entries).
    """
    with open(_PUBLISHED) as f:
        data = json.load(f)
    paper = {(r['model'], float(r['multiplier']), int(r['asymmrate'])): r for r in data['paper']}
    checkpoints = {}
    for e in pretrained_entries():
        key = (e.model, float(e.kwargs.get('multiplier', 1.0)), int(e.kwargs.get('asymmrate', 0)))
        checkpoints.setdefault(key, []).append((e.name, e.top1, e.top5))
    return {'paper': paper, 'checkpoints': checkpoints}


def _given(multiplier, asymmrate):
    return {k: v for k, v in (('multiplier', multiplier), ('asymmrate', asymmrate)) if v is not None}


def _summary_configs(model, multiplier, asymmrate):
    if model is not None:
        try:
            spec = get_model_spec(model)
            config = spec.config(_given(multiplier, asymmrate))
        except ValueError as err:
            raise EvalError(str(err))
        # GluonCV's mobilenetv2_<width> names count as mobilenetv2 (its figures are filed under that name).
        return [(spec.alias_of or spec.name, float(config.get('multiplier', 1.0)), int(config.get('asymmrate', 0)))]
    return [(_grid_name(spec, w, r), w, r) for spec in map(get_model_spec, get_model_list()) if spec.without_reuse
            for w in spec.widths for r in SUMMARY_RATES]


def _grid_name(spec, width, rate):
    """The name of a grid row: at asymmrate 0 the model without feature reuse where that one's widths list
    the width (GluonCV's MobileNetV2 files are filed under its name), else the model itself."""
    plain = get_model_spec(spec.without_reuse)
    return plain.name if rate == 0 and width in plain.widths else spec.name


def summary_rows(model=None, multiplier=None, asymmrate=None, input_size=224):
    """Counts of one configuration, or of the whole grid, with the published figures.

    Parameters
    ----------
    model : str, optional
        One model (``multiplier`` default 1.0, ``asymmrate`` default 1 where
        the model takes one); when None, every model with feature reuse
        (``without_reuse``), in the registry's order, x its ``widths`` x
        :data:`SUMMARY_RATES`: ``asymmnet_large``/``asymmnet_small`` (the grid
        of ``counts.csv``; asymmrate 0 is MobileNetV3), then
        ``mobilenetv2_asymm`` (named ``mobilenetv2`` at asymmrate 0).
    multiplier, asymmrate : optional
    input_size : int

    Returns
    -------
    list of dict
        ``model``, ``multiplier``, ``asymmrate``, and either ``macs``,
        ``params``, ``params_paper`` or ``invalid`` (the construction error);
        ``paper`` (dict or None) and ``checkpoints`` (list) of published figures.
    """
    figures = published_figures()
    rows = []
    for name, width, rate in _summary_configs(model, multiplier, asymmrate):
        row = {'model': name, 'multiplier': width, 'asymmrate': rate,
               'paper': figures['paper'].get((name, width, rate)),
               'checkpoints': figures['checkpoints'].get((name, width, rate), [])}
        spec = get_model_spec(name)
        if rate == 0 and spec.without_reuse:
            row['checkpoints'] = row['checkpoints'] + figures['checkpoints'].get((spec.without_reuse, width, 0), [])
        kwargs = {k: v for k, v in (('multiplier', width), ('asymmrate', rate)) if k in spec.arguments}
        try:
            net = get_model(name, **kwargs)
        except ValueError as err:
            row['invalid'] = str(err)
        else:
            row.update(profile(net, input_size))
        rows.append(row)
    return rows


def _paper_millions(v):
    return '%gM' % round(v / 1e6, 2)


def format_summary(rows):
    """Render :func:`summary_rows` as aligned text (counts exact; published figures beside them)."""
    head = '%-18s %5s %2s %13s %11s %11s  %-28s %s' % (
        'model', 'width', 'r', 'MACs', 'params', 'params*', 'paper: top1 / params* / MAdds',
        'checkpoint: top1 / top5')
    lines = [head, '-' * len(head)]
    for r in rows:
        paper = r['paper']
        paper_txt = ('%.1f / %s / %s' % (paper['top1'], _paper_millions(paper['params_paper']),
                                          _paper_millions(paper['madds'])) if paper else '')
        ckpt = '; '.join('%.2f / %.2f (%s)' % (t1, t5, n) for n, t1, t5 in r['checkpoints'])
        if 'invalid' in r:
            counts = '%-37s' % 'invalid configuration (see below)'
        else:
            counts = '%13s %11s %11s' % tuple('{:,}'.format(r[k]) for k in ('macs', 'params', 'params_paper'))
        lines.append(('%-18s %5.2f %2d %s  %-28s %s' % (r['model'], r['multiplier'], r['asymmrate'], counts,
                                                       paper_txt, ckpt)).rstrip())
    notes = [r for r in rows if 'invalid' in r]
    lines.append('')
    lines.append('params: every trainable parameter; params*: the paper\'s convention (one kernel factor per '
                 'conv, see gluon_asymmnet.complexity). r = asymmrate; asymmnet_* at r 0 is MobileNetV3.')
    for r in notes:
        lines.append('invalid %s x%.2f r%d: %s' % (r['model'], r['multiplier'], r['asymmrate'],
                                                   re.sub(r'\s+', ' ', r['invalid'])))
    return '\n'.join(lines)


def layer_table(model, multiplier=1.0, asymmrate=None, input_size=224):
    """Per-layer MACs and parameters of one configuration (:func:`gluon_asymmnet.complexity.format_table`)."""
    try:
        net = get_model(model, **_given(multiplier, asymmrate))
    except ValueError as err:
        raise EvalError('%s: %s' % (model, err))
    return format_table(profile(net, input_size, per_layer=True)['layers'])
