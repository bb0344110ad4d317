"""What ``bench_inference.py`` reports beyond the backend table: the targets' verdicts, the operator profile.

The inference work had two targets, judged by :func:`target_status`:

1. The project's fastest float32 MXNet path is at least as fast as
   onnxruntime on the exported model.
2. The fastest INT8 backend is 1.5x the fastest float32 one, within one point
   of its top-1.
"""

__all__ = ['target_status', 'format_targets', 'format_profile']


def target_status(result, fp32_backends=('mxnet', 'mxnet-fused'), baseline='onnxruntime',
                  int8_speedup=1.5, max_top1_drop=0.01):
    """The two targets, checked on one :func:`gluon_asymmnet.inference.benchmark` result.

    1. The project's fastest float32 MXNet path (``fp32_backends``) is at
       least as fast as ``baseline`` (onnxruntime on the exported model).
    2. The fastest INT8 backend is ``int8_speedup`` times as fast as the
       fastest float32 row of the table (onnxruntime included), and its top-1
       is within ``max_top1_drop`` of float32 (when accuracy was measured).

    Each is judged separately at the latency and the throughput batch.

    Returns
    -------
    list of dict
        One per target and batch: ``target``, ``metric``, ``value`` (ratio),
        ``met`` (bool) and ``detail`` (text).
    """
    rows = {r['backend']: r for r in result['rows']}
    b_lat, b_thr = result['setup']['batch_sizes']
    # Speed as "bigger is faster" at each batch.
    speeds = {('latency', b_lat): {b: 1.0 / r['latency_ms'] for b, r in rows.items()},
              ('throughput', b_thr): {b: r['throughput'] for b, r in rows.items()}}
    out = []
    for (metric, batch), speed in speeds.items():
        ours = [b for b in fp32_backends if b in speed]
        if ours and baseline in speed:
            best = max(ours, key=speed.get)
            ratio = speed[best] / speed[baseline]
            out.append(dict(target='fastest FP32 MXNet path >= %s' % baseline, metric='%s b%d' % (metric, batch),
                            value=ratio, met=ratio >= 1.0,
                            detail='%s is %.2fx %s' % (best, ratio, baseline)))
        fp32 = [b for b in speed if rows[b]['precision'] == 'fp32']
        int8 = [b for b in speed if rows[b]['precision'] == 'int8']
        if fp32 and int8:
            best32, best8 = max(fp32, key=speed.get), max(int8, key=speed.get)
            ratio = speed[best8] / speed[best32]
            drop = None
            if 'top1' in rows[best8] and 'top1' in rows[best32]:
                drop = rows[best32]['top1'] - rows[best8]['top1']
            met = ratio >= int8_speedup and (drop is None or drop <= max_top1_drop)
            detail = '%s is %.2fx %s' % (best8, ratio, best32)
            if drop is not None:
                detail += ', top-1 %+.2f points' % (-100 * drop)
            out.append(dict(target='INT8 >= %.1fx fastest FP32, top-1 within %g point' % (int8_speedup,
                                                                                          100 * max_top1_drop),
                            metric='%s b%d' % (metric, batch), value=ratio, met=met, detail=detail))
    return out


def format_targets(status):
    """One line per :func:`target_status` entry."""
    return '\n'.join('%-52s %-16s %s  (%s)' % (s['target'], s['metric'], 'MET' if s['met'] else 'MISSED',
                                               s['detail']) for s in status)


def format_profile(profile, title=''):
    """Render :func:`gluon_asymmnet.inference.operator_profile` as text, with each operator's share of the
    operators' total."""
    total = sum(profile['operators'].values())
    lines = [title] if title else []
    lines.append('%-28s %10s %7s' % ('operator', 'ms/call', 'share'))
    for name, ms in profile['operators'].items():
        lines.append('%-28s %10.2f %6.1f%%' % (name, ms, 100 * ms / total))
    lines.append('%-28s %10.2f   (wall time per call with bulk execution: %.2f ms)'
                 % ('all operators', total, profile['wall_ms']))
    return '\n'.join(lines)
