"""Pack images into indexed RecordIO files (``prefix.rec`` + ``prefix.idx``).

The project's own packer, for ImageNet and any folder of class subfolders::

    python -m gluon_asymmnet.pack ~/imagenet/train ~/rec/train --resize 480
    python -m gluon_asymmnet.pack ~/imagenet/val ~/rec/val --resize 480 \
        --classes ~/rec/train.classes.txt

Records carry MXNet's image record header (label in ``IRHeader.label``,
record key in ``id``) and a JPEG payload, so MXNet's C++
``mx.io.ImageRecordIter`` reads them as well as
:func:`gluon_asymmnet.data.get_data_loaders`. Label i is the i-th class folder
in sorted order; ``prefix.classes.txt`` lists the folder names by label.
Files are written under temporary names and renamed when complete.
"""
import argparse
import os
import struct
import sys
import warnings
from multiprocessing import Pool

import cv2
import mxnet as mx
import numpy as np

from ..files import atomic_write
from .errors import DataError
from .pixels import DEFAULT_MAX_IMAGE_PIXELS, max_image_pixels as max_image_pixels_now, pixel_problem, set_max_image_pixels
from .sources import _control_character, list_image_folder

__all__ = ['pack_folder', 'pack_arrays', 'encode_image', 'read_classes', 'worker_count', 'main']

_JPEG_SOI = b'\xff\xd8'


def _header(label, key, source_id=0):
    return struct.pack('IfQQ', 0, float(label), int(key), int(source_id))


def encode_image(payload, resize=None, quality=95, pass_through=True):
    """Turn the bytes of an image file into a JPEG record payload.

    Parameters
    ----------
    payload : bytes
        The encoded image (any format OpenCV decodes).
    resize : int, optional
        Shrink so that the short side is ``resize`` (never enlarges).
    quality : int
        JPEG quality when encoding.
    pass_through : bool
        Keep a JPEG's own bytes when it needs no resizing (lossless, and what
        the file holds is what training sees). It is still decoded once to
        check it is an image.

    Returns
    -------
    bytes or None
        The JPEG payload; None when ``payload`` is empty, not a decodable
        image, or above the pixel limit (:mod:`.pixels`; not decoded).
    """
    if not payload or pixel_problem(payload):
        return None
    arr = np.frombuffer(payload, dtype=np.uint8)
    try:
        if pass_through and not resize and payload[:2] == _JPEG_SOI:
            # A reduced decode still parses the whole stream, at a fraction of the cost.
            return payload if cv2.imdecode(arr, cv2.IMREAD_REDUCED_COLOR_4) is not None else None
        img = cv2.imdecode(arr, cv2.IMREAD_COLOR)
    except cv2.error:
        return None
    if img is None:
        return None
    if resize:
        h, w = img.shape[:2]
        if min(h, w) > resize:
            if h > w:
                nw, nh = resize, int(round(h * resize / w))
            else:
                nw, nh = int(round(w * resize / h)), resize
            img = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode('.jpg', img, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    return buf.tobytes() if ok else None


def _truncated_jpeg(payload):
    """A JPEG cut short: no end-of-image marker after its last scan (libjpeg would fill the rest with grey).

    The marker cannot occur inside scan data (0xFF is always escaped there);
    an EXIF thumbnail's own end marker comes before the main image's scan.
    """
    return payload[:2] == _JPEG_SOI and payload.rfind(b'\xff\xd9') < payload.rfind(b'\xff\xda')


def _encode_file(args):
    path, resize, quality, pass_through, max_pixels = args
    try:
        with open(path, 'rb') as f:
            payload = f.read()
    except OSError as e:
        return None, 'cannot be read: %s' % (e.strerror or e)
    if not payload:
        return None, 'is empty (0 bytes)'
    too_large = pixel_problem(payload, max_pixels)
    if too_large:
        return None, too_large
    if _truncated_jpeg(payload):
        return None, 'is a truncated JPEG (%d bytes, no end-of-image marker)' % len(payload)
    out = encode_image(payload, resize, quality, pass_through)
    return out, (None if out is not None else 'is not a decodable image')


class _Writer(object):
    """Writes ``prefix.rec``/``.idx`` under temporary names; ``commit`` renames them."""

    def __init__(self, prefix):
        prefix = _strip(prefix)
        folder = os.path.dirname(os.path.abspath(prefix))
        if not os.path.isdir(folder):
            raise DataError('output folder %s does not exist' % folder)
        self.rec, self.idx = prefix + '.rec', prefix + '.idx'
        for path in (self.rec, self.idx, prefix + '.classes.txt'):
            if os.path.isdir(path):
                raise DataError('cannot write %s: it is a folder; give another output prefix' % path)
        self._tmp = (self.rec + '.tmp%d' % os.getpid(), self.idx + '.tmp%d' % os.getpid())
        try:
            self._io = mx.recordio.MXIndexedRecordIO(self._tmp[1], self._tmp[0], 'w')
        except mx.base.MXNetError as e:
            self._remove()
            raise DataError('cannot write %s: %s' % (self.rec, str(e).splitlines()[0])) from None

    def write(self, key, label, payload, source_id=0):
        self._io.write_idx(key, _header(label, key, source_id) + payload)

    def commit(self):
        try:
            self._io.close()
            os.replace(self._tmp[0], self.rec)
            os.replace(self._tmp[1], self.idx)
        except OSError as e:
            self._remove()
            raise DataError('cannot write %s: %s' % (e.filename or self.rec, e.strerror or e)) from None

    def abort(self):
        self._io.close()
        self._remove()

    def _remove(self):
        for p in self._tmp:
            if os.path.exists(p):
                os.remove(p)


def _strip(prefix):
    # Accept 'train.rec' for the prefix 'train'.
    return prefix[:-4] if prefix.endswith('.rec') else prefix


def _check_class_names(classes):
    """Refuse class names that ``classes.txt`` (one name a line) cannot give back: a control character, a blank."""
    for c in classes:
        if _control_character(str(c)) is not None or not str(c).strip():
            raise ValueError('class name %r cannot be stored one a line in classes.txt: it is blank or has a '
                             'control character' % (c,))


def _write_classes(prefix, classes):
    path = _strip(prefix) + '.classes.txt'
    text = ''.join('%s\n' % c for c in classes)

    def write(tmp):
        with open(tmp, 'w', encoding='utf-8') as f:
            f.write(text)
    atomic_write(path, write)
    return path


def _progress(total, desc):
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, unit='img', disable=not sys.stderr.isatty())


def read_classes(path):
    """Class names by label from a ``classes.txt`` file (one name a line)."""
    try:
        with open(path, encoding='utf-8') as f:
            names = [line.rstrip('\r\n') for line in f if line.strip()]
    except OSError as e:
        raise DataError('class list %s cannot be read: %s' % (path, e.strerror or e)) from None
    if not names:
        raise DataError('class list %s names no classes' % path)
    return names


def worker_count(num_workers, tasks=None):
    """``(processes, note)``: ``num_workers`` (None: all CPUs) capped at 4 per CPU and at ``tasks``.

    ``note`` is a warning text when the request was capped (None otherwise); a
    negative count raises ValueError. Each process costs memory and start-up
    time: ``-j 1000`` on 2 cores took 84 s instead of 4 s.
    """
    cpus = os.cpu_count() or 1
    if num_workers is None:
        n = cpus
    else:
        n = int(num_workers)
        if n < 0:
            raise ValueError('-j/--num-workers must be >= 0 (0 or 1: no worker processes), got %d' % n)
    note = None
    if n > _WORKERS_PER_CPU * cpus:
        note = ('-j %d capped at %d worker processes (%d per CPU, %d CPUs): more only cost memory and start-up time'
                % (n, _WORKERS_PER_CPU * cpus, _WORKERS_PER_CPU, cpus))
        n = _WORKERS_PER_CPU * cpus
    if tasks is not None:
        n = min(n, max(1, tasks))
    return n, note


_WORKERS_PER_CPU = 4


def pack_folder(root, prefix, resize=None, quality=95, num_workers=None, pass_through=True,
                progress=True, classes=None, max_image_pixels=None):
    """Pack ``root/<class>/.../<image>`` into ``prefix.rec`` + ``prefix.idx``.

    Classes are the sorted subfolders (at least two; hidden ones left out),
    label = position (or as ``classes`` says); images are every file the
    decoder reads (:data:`~gluon_asymmnet.data.sources.IMAGE_EXTENSIONS`) in a
    class folder and its subfolders; records follow class then path order,
    with keys 0..N-1. ``prefix.classes.txt`` lists the class names by label
    (names with control characters are refused). Files that cannot be read or
    decoded, that are above the pixel limit, or that are of another format,
    are left out with a warning naming them.

    Parameters
    ----------
    root : str
        Folder of class subfolders (e.g. ImageNet's ``train``).
    prefix : str
        Output path without extension.
    resize : int, optional
        Shrink images so that their short side is ``resize`` pixels (480 is a
        common choice for ImageNet); smaller images are kept as they are.
    quality : int
        JPEG quality (1-100) of re-encoded images.
    num_workers : int, optional
        Encoding processes (default: all CPUs; at most 4 per CPU, with a warning).
    pass_through : bool
        Store JPEG files that need no resizing byte for byte.
    progress : bool
        Show a progress bar (on interactive terminals only).
    classes : sequence of str or str, optional
        The class names by label (or the path of a ``classes.txt``), e.g. the
        training set's, when ``root`` holds only some of the classes: labels
        then agree with the training file's.
    max_image_pixels : int, optional
        Images above this many pixels are left out, not decoded (default: the
        process's limit, :mod:`gluon_asymmnet.data.pixels`).

    Returns
    -------
    dict
        ``rec``, ``idx``, ``classes_file``, ``classes``, ``num_images``,
        ``skipped`` (list of ``(path, reason)``).
    """
    if resize is not None and int(resize) < 1:
        raise ValueError('resize must be a positive number of pixels, got %r' % (resize,))
    if not 1 <= int(quality) <= 100:
        raise ValueError('quality must be in 1..100, got %r' % (quality,))
    if isinstance(classes, str):
        classes = read_classes(classes)
    skipped = []
    # Without the training set's classes, a folder of one class packs data that trains nothing.
    paths, labels, names = list_image_folder(root, classes, skipped, min_classes=2)
    for path, problem in skipped:
        warnings.warn('left out %s: it %s' % (path, problem))
    classes = list(classes) if classes is not None else names
    _check_class_names(classes)
    num_workers, note = worker_count(num_workers, len(paths))
    if note:
        warnings.warn(note)
    limit = max_image_pixels or max_image_pixels_now()
    jobs = [(p, resize, quality, pass_through, limit) for p in paths]
    writer = _Writer(prefix)
    bar = _progress(len(paths), os.path.basename(os.path.normpath(root))) if progress else None
    key, written = 0, set()
    pool = Pool(num_workers) if num_workers > 1 else None
    try:
        results = pool.imap(_encode_file, jobs, chunksize=32) if pool else map(_encode_file, jobs)
        for path, label, (payload, problem) in zip(paths, labels, results):
            if payload is None:
                skipped.append((path, problem))
                warnings.warn('left out %s: it %s' % (path, problem))
            else:
                writer.write(key, label, payload)
                written.add(int(label))
                key += 1
            if bar is not None:
                bar.update(1)
    except BaseException:
        writer.abort()
        raise
    finally:
        if pool is not None:
            pool.terminate()
        if bar is not None:
            bar.close()
    if key == 0:
        writer.abort()
        raise DataError('no image in %s could be decoded (%d files tried)' % (root, len(paths)))
    dead = sorted(set(labels.tolist()) - written)
    if dead:
        writer.abort()
        raise DataError('class %s: none of its %d images could be packed (%s), so it would be a class without '
                        'examples' % (classes[dead[0]], int((labels == dead[0]).sum()), next(
                            '%s %s' % (p, why) for p, why in skipped if p in set(
                                np.asarray(paths)[labels == dead[0]]))))
    writer.commit()
    return dict(rec=writer.rec, idx=writer.idx, classes_file=_write_classes(prefix, classes),
                classes=classes, num_images=key, skipped=skipped)


# Record headers store the label as float32, exact for integers below 2**24.
_MAX_LABEL = 1 << 24


def _check_labels(labels, classes=None):
    """Class labels as an int64 array; a non-integer, negative, NaN or too large label raises ValueError."""
    raw = np.asarray(labels)
    if raw.ndim != 1:
        raise ValueError('pack_arrays: labels must be a sequence of class indices, got shape %s' % (raw.shape,))
    if raw.dtype.kind not in 'iuf':
        raise ValueError('pack_arrays: labels must be numbers (class indices), got dtype %s' % raw.dtype)
    values = raw.astype(np.float64)
    limit = len(classes) if classes is not None else _MAX_LABEL
    bad = np.flatnonzero(~np.isfinite(values) | (values != np.round(values)) | (values < 0) | (values >= limit))
    if bad.size:
        i = int(bad[0])
        rule = ('integers in [0, %d) (the %d classes given)' % (limit, limit) if classes is not None
                else 'integers >= 0 and below 2**24 (stored as float32)')
        raise ValueError('pack_arrays: label %d is %r; labels must be %s%s'
                         % (i, raw[i].item(), rule, ' (%d bad labels in all)' % bad.size if bad.size > 1 else ''))
    return values.astype(np.int64)


def pack_arrays(images, labels, prefix, quality=95, classes=None, source_ids=None):
    """Pack in-memory RGB images into ``prefix.rec`` + ``prefix.idx`` (keys 0..N-1).

    Parameters
    ----------
    images : array (N, H, W, 3) uint8, or a sequence of (H, W, 3) uint8 arrays
        RGB images.
    labels : sequence of N integers
        Class labels: whole numbers >= 0 (below ``len(classes)`` when
        ``classes`` is given), stored exactly as float32 (so below 2**24).
    prefix : str
        Output path without extension.
    quality : int
        JPEG quality.
    classes : sequence of str, optional
        Class names by label, written to ``prefix.classes.txt``.
    source_ids : sequence of N int, optional
        Stored in each record header's ``id2`` (e.g. the images' indices in a
        larger collection).

    Returns
    -------
    dict
        ``rec``, ``idx``, ``num_images`` (and ``classes_file`` with ``classes``).
    """
    labels = _check_labels(labels, classes)
    if classes is not None:
        _check_class_names(classes)
    if len(images) != len(labels):
        raise ValueError('pack_arrays: %d images but %d labels' % (len(images), len(labels)))
    if source_ids is not None and len(source_ids) != len(labels):
        raise ValueError('pack_arrays: %d images but %d source ids' % (len(images), len(source_ids)))
    for i, img in enumerate(images):
        img = np.asarray(img)
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise ValueError('pack_arrays: image %d must be uint8 (H, W, 3) RGB, got %s %s'
                             % (i, img.dtype, img.shape))
    writer = _Writer(prefix)
    try:
        for i, (img, label) in enumerate(zip(images, labels)):
            bgr = cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2BGR)
            ok, buf = cv2.imencode('.jpg', bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
            writer.write(i, label, buf.tobytes(), 0 if source_ids is None else source_ids[i])
    except BaseException:
        writer.abort()
        raise
    writer.commit()
    out = dict(rec=writer.rec, idx=writer.idx, num_images=len(labels))
    if classes is not None:
        out.update(classes_file=_write_classes(prefix, classes), classes=list(classes))
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog='python -m gluon_asymmnet.pack',
        description='Pack ROOT/<class>/<image> into PREFIX.rec + PREFIX.idx (+ PREFIX.classes.txt).')
    parser.add_argument('root', help='folder of class subfolders, e.g. ~/imagenet/train')
    parser.add_argument('prefix', help='output path without extension, e.g. ~/rec/train')
    parser.add_argument('--resize', type=int, default=None,
                        help='shrink the short side to this many pixels (480 is a common choice for ImageNet)')
    parser.add_argument('--quality', type=int, default=95, help='JPEG quality of re-encoded images')
    parser.add_argument('-j', '--num-workers', type=int, default=None,
                        help='processes (default: all CPUs; at most %d per CPU)' % _WORKERS_PER_CPU)
    parser.add_argument('--no-pass-through', action='store_true',
                        help='re-encode JPEG files even when they need no resizing')
    parser.add_argument('--classes', default=None,
                        help='classes.txt giving the labels (e.g. the training pack\'s), '
                             'for a folder that holds only some of the classes')
    parser.add_argument('--max-image-pixels', type=int, default=None,
                        help='leave out images with more pixels than this, undecoded (default %d, as PIL)'
                             % DEFAULT_MAX_IMAGE_PIXELS)
    args = parser.parse_args(argv)
    limit = max_image_pixels_now()
    try:
        if args.max_image_pixels is not None:
            set_max_image_pixels(args.max_image_pixels)
        workers, note = worker_count(args.num_workers)
        if note:
            print('warning: %s' % note, file=sys.stderr)
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            out = pack_folder(args.root, args.prefix, args.resize, args.quality, workers,
                              pass_through=not args.no_pass_through, classes=args.classes)
    except (DataError, ValueError) as e:
        print('error: %s' % e, file=sys.stderr)
        return 2
    finally:
        set_max_image_pixels(limit)
    print('packed %d images of %d classes into %s (%.1f MB), index %s, class names %s'
          % (out['num_images'], len(out['classes']), out['rec'], os.path.getsize(out['rec']) / 1e6,
             out['idx'], out['classes_file']))
    for path, problem in out['skipped']:
        print('left out %s: it %s' % (path, problem))
    return 0


if __name__ == '__main__':
    sys.exit(main())
