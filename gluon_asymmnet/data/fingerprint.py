"""A cheap fingerprint of an image source's content: what tells a resumed run that its data changed.

Counts and paths do not change when an image is replaced. The fingerprint
is, for an image folder, the size of every image file (one ``stat`` each,
no read: 30 us a file on a loaded 2-core AMD EPYC, so about 40 s for
ImageNet's 1.28 million files, once when a run starts) with the first bytes
of a few spread over the list; for RecordIO,
the whole ``.idx`` (every record's offset: a replaced image of another size
moves them; 0.2 s for ImageNet's 25 MB) and blocks read at evenly spread
offsets of the ``.rec``. Paths
enter relative to the folder, so moved or copied data (new mtimes) has the
same fingerprint.
"""
import hashlib
import os

__all__ = ['content_fingerprint']

_SAMPLES = 16          # files (folders) or blocks (RecordIO) read
_BLOCK = 4096          # bytes read of each


def _file_sizes(paths, root, digest):
    # One stat per file, nothing else per file: os.path.relpath alone would double the cost.
    prefix = os.path.join(os.path.abspath(root), '') if root else ''
    cut = len(prefix) if all(p.startswith(prefix) for p in paths[:1]) else 0
    stat = os.stat
    digest.update('\n'.join('%s\0%d' % (p[cut:], stat(p).st_size) for p in paths).encode('utf-8', 'surrogateescape'))
    step = max(1, len(paths) // _SAMPLES)
    for path in paths[::step][:_SAMPLES]:
        with open(path, 'rb') as f:
            digest.update(f.read(_BLOCK))


def _record_file(rec, idx, digest):
    if idx and os.path.isfile(idx):
        with open(idx, 'rb') as f:
            for block in iter(lambda: f.read(1 << 20), b''):
                digest.update(block)
    size = os.path.getsize(rec)
    with open(rec, 'rb') as f:
        for i in range(_SAMPLES):
            f.seek(max(0, size - _BLOCK) * i // max(1, _SAMPLES - 1))
            digest.update(f.read(_BLOCK))


def content_fingerprint(source):
    """A short hex digest of ``source``'s content (module notes), or None for a source of another kind.

    Parameters
    ----------
    source
        A ``RecordSource`` (``rec``, ``idx``), a ``FolderSource`` (``paths``,
        ``root``) or a ``SubsetSource`` of one (``parent``, ``positions``).
    """
    digest = hashlib.sha256()
    parent = getattr(source, 'parent', None)
    if parent is not None and getattr(parent, 'paths', None) is not None:
        _file_sizes([parent.paths[int(p)] for p in source.positions], getattr(parent, 'root', None), digest)
    elif getattr(source, 'paths', None) is not None:
        _file_sizes(list(source.paths), getattr(source, 'root', None), digest)
    elif getattr(source, 'rec', None):
        _record_file(source.rec, getattr(source, 'idx', None), digest)
    elif parent is not None and getattr(parent, 'rec', None):
        _record_file(parent.rec, getattr(parent, 'idx', None), digest)
    else:
        return None
    return digest.hexdigest()[:16]
