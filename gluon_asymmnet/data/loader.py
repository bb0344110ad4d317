"""Train and validation batches over an image source, with worker processes.

Order and augmentation are pure functions of ``(seed, epoch, shard)``: the
shuffled order of an epoch comes from a generator seeded with
``(seed, epoch, num_parts, part_index)`` and each sample's augmentation from
one seeded with ``(seed, epoch, record key)``. A run resumed at epoch k
therefore sees exactly the batches of an uninterrupted run, whatever the
number of workers.

Epoch boundaries (``last_batch``):

* ``'rollover'`` (default): the samples left over at the end of an epoch open
  the next one's first batch; think of the epochs' shuffled orders laid end to
  end and cut into batches, epoch ``e`` owning the batches that start inside
  it. Epoch e has ``ceil((e+1)L/B) - ceil(eL/B)`` batches (L images per
  shard, B per batch; ImageNet at 2048: 625 or 626), so after e epochs
  exactly ``ceil(e L / B)`` updates have run. This is MXNet
  ``ImageRecordIter``'s ``round_batch`` behaviour, under which the released
  run's learning rates were logged (DESIGN section 5).
* ``'discard'``: every epoch has ``L // B`` batches from its own order; the
  remainder is dropped.

Sharding (``num_parts``/``part_index``) is strided: shard p holds positions
p, p + P, p + 2P, ... of the source, so shards are disjoint, together
complete, class-balanced even in a class-sorted file, and differ in size by at
most one. For training every shard counts ``L = ceil(N / P)`` samples per
epoch (a shard one short repeats one shuffled sample), so all shards run the
same number of batches per epoch and ``dist_sync`` workers stay in step.

A corrupt record (framing or image payload that does not decode) is skipped
with a :class:`CorruptRecordWarning` naming it (once per record) and counted
in ``skipped`` every time it is met. A train batch missing samples is
completed from the samples that follow the epoch in the stream, so batches
stay full and the batch count per epoch does not change. Validation batches
just lose the sample.

Checked before any pass, on a few records spread over the source (training
and validation alike): at least one holds a decodable image, so a file of
nothing but corrupt records is refused when the batches are built, not after
a training epoch. With ``num_classes``, every label read (those checked up
front, then each record as a pass reads it) must be a class index in
``[0, num_classes)``: a label outside stops the pass with a
:class:`DataError` naming the record, before the batch holding it is
returned, instead of being clipped into the last class by the loss.
"""
import os
import threading
import warnings

import cv2
import mxnet as mx
import numpy as np
from mxnet.gluon.data import DataLoader

from ..preprocessing import IMAGENET
from .errors import CorruptRecordWarning, DataError
from .pixels import pixel_problem
from .folders import image_folder_sources
from .sources import FolderSource, RecordSource, class_folder_names
from .transforms import decode, normalize_into, train_image, val_image

__all__ = ['ImageBatches', 'get_data_loaders', 'folder_batches', 'record_class_names']

_DTYPES = ('float32', 'float16')
_ORDER_TAG, _SAMPLE_TAG = 1, 2
# Records decoded (and labels checked) when batches are built, spread over the source.
_SPOT_DECODES = 16
# Seconds close() gives the pool's own shutdown (it can wait forever on a lock a killed worker held).
_STOP_SECONDS = 5


def _ceil_div(a, b):
    return -(-a // b)


def _label_error(label, num_classes):
    """Why ``label`` is not a class index of ``num_classes`` classes, or None when it is one."""
    if num_classes is None:
        return None
    if not np.isfinite(label) or label != int(label) or not 0 <= label < num_classes:
        return 'has label %s; labels must be class indices in [0, %d) for a model of %d classes' % (
            '%g' % label if np.isfinite(label) else label, num_classes, num_classes)
    return None


class _ChunkWork(object):
    """Turns one chunk ``(positions, epochs)`` into ``(data, label, bad positions, bad labels)`` numpy arrays.

    Bad labels are ``(position, label)`` pairs outside ``num_classes`` (the images are not decoded).

    It is the DataLoader's "dataset": each sampler item is a whole chunk, so a
    worker writes its batch straight into one array instead of stacking samples.
    """

    def __init__(self, source, train, input_size, crop_ratio, seed, augment, mean, std, dtype, num_classes=None):
        self.source = source
        self.num_classes = num_classes
        self.train = train
        self.size = input_size
        self.crop_ratio = crop_ratio
        self.seed = seed
        self.augment = augment
        self.mean = np.asarray(mean, dtype=np.float32).reshape(3, 1, 1)
        self.inv_std = (1.0 / np.asarray(std, dtype=np.float32)).reshape(3, 1, 1)
        self.dtype = np.dtype(dtype)

    def __len__(self):
        return len(self.source)

    def __getitem__(self, chunk):
        positions, epochs = chunk
        data = np.empty((len(positions), 3, self.size, self.size), dtype=self.dtype)
        labels = np.empty(len(positions), dtype=np.float32)
        bad, wrong, k = [], [], 0
        for pos, epoch in zip(positions, epochs):
            label, key, payload = self.source.read(pos)
            if payload is not None and _label_error(label, self.num_classes):
                wrong.append((int(pos), label))
                continue
            img = decode(payload)
            if img is None:
                bad.append(int(pos))
                continue
            if self.train:
                rng = np.random.default_rng((self.seed, _SAMPLE_TAG, int(epoch), key))
                img = train_image(img, self.size, rng, **self.augment)
            else:
                img = val_image(img, self.size, self.crop_ratio)
            normalize_into(data[k], img, self.mean, self.inv_std)
            labels[k] = label
            k += 1
        return data[:k], labels[:k], bad, wrong


def _to_ndarrays(result, ctx):
    data, labels, bad, wrong = result
    if len(labels) == 0:
        return None, None, bad, wrong
    return (mx.nd.array(data, ctx=ctx, dtype=data.dtype),
            mx.nd.array(labels, ctx=ctx, dtype=np.float32), bad, wrong)


def _batchify_shared(items):
    # Worker processes hand batches back through shared memory, as Gluon's default does.
    return _to_ndarrays(items[0], mx.Context('cpu_shared', 0))


def _batchify_cpu(items):
    return _to_ndarrays(items[0], mx.cpu())


class _TaskList(object):
    """The DataLoader's batch sampler: the chunks of the pass about to run."""

    def __init__(self):
        self.tasks = []

    def __iter__(self):
        return ([t] for t in self.tasks)

    def __len__(self):
        return len(self.tasks)


class ImageBatches(object):
    """Batches ``(data, label)`` of one shard of an image source (see the module notes).

    ``data`` is an NCHW NDArray (``dtype``), normalised with ``mean``/``std``;
    ``label`` a float32 NDArray (N,). Both are CPU arrays (``cpu_shared`` when
    they come from worker processes). Iterating runs one pass: for training,
    the current epoch (then the epoch counter advances), for validation every
    sample of the shard once, in order, the last batch possibly smaller.

    Attributes
    ----------
    num_samples : int
        Images in this shard.
    batch_size : int
    num_batches : int
        Batches of the current epoch (training with ``'rollover'``: varies by one
        between epochs, see :meth:`batches_in_epoch`).
    skipped : int
        Corrupt records skipped so far, counted every time one is met.
    epoch : int
        The epoch the next pass runs.
    class_names : list of str or None
        Folder names of the classes by label, when the source records them.
    num_classes : int or None
        Labels must be class indices below it (module notes).

    Parameters
    ----------
    source : RecordSource or FolderSource
        Where the images come from.
    train : bool
        Training (shuffled, augmented, full batches) or validation batches.
    augment : dict, optional
        Keyword arguments of :func:`~gluon_asymmnet.data.transforms.train_image`.
    chunk_size : int
        Workers decode at most this many images per task: a big batch is
        spread over several workers and joined, and the shared memory held by
        prefetching (2 x ``num_workers`` tasks) stays bounded.

    The other parameters are those of :func:`get_data_loaders`.

    Raises
    ------
    DataError
        Too few images for the shards or a batch.
    """

    def __init__(self, source, train, batch_size=32, input_size=IMAGENET.input_size,
                 crop_ratio=IMAGENET.crop_ratio, num_parts=1, part_index=0, seed=0, mean=IMAGENET.mean,
                 std=IMAGENET.std, dtype='float32',
                 num_workers=0, last_batch='rollover', augment=None, thread_pool=False, chunk_size=64,
                 num_classes=None):
        n = len(source)
        if n < num_parts:
            raise DataError('%s holds %d images, fewer than num_parts=%d shards'
                            % (_source_name(source), n, num_parts))
        self.source = source
        self.train = bool(train)
        self.batch_size = int(batch_size)
        self.input_size = int(input_size)
        self.num_parts, self.part_index = int(num_parts), int(part_index)
        self.seed = int(seed)
        self.chunk_size = max(1, min(int(chunk_size), self.batch_size))
        self.last_batch = last_batch
        self.skipped = 0
        self.epoch = 0
        self.class_names = getattr(source, 'class_names', None)
        self._positions = np.arange(self.part_index, n, self.num_parts, dtype=np.int64)
        self.num_samples = len(self._positions)
        self._epoch_len = _ceil_div(n, self.num_parts)
        self._orders = {}
        self._warned = set()
        self._active = None
        if self.train and self._epoch_len < self.batch_size:
            raise DataError('%s: a shard holds %d images, fewer than one batch of %d'
                            % (_source_name(source), self._epoch_len, self.batch_size))
        self.num_classes = None if num_classes is None else int(num_classes)
        self._work = _ChunkWork(source, self.train, self.input_size, crop_ratio, self.seed,
                                augment or {}, mean, std, dtype, self.num_classes)
        self._tasks = _TaskList()
        forks = num_workers > 0 and not thread_pool
        # Worker processes already run in parallel, so they get one OpenCV thread each. It has to
        # be set before the fork: changing it in a child whose parent had OpenCV threads running
        # deadlocks.
        cv2_threads = cv2.getNumThreads()
        if forks:
            cv2.setNumThreads(1)
        try:
            self._loader = DataLoader(self._work, batch_sampler=self._tasks,
                                      batchify_fn=_batchify_shared if forks else _batchify_cpu,
                                      num_workers=num_workers, thread_pool=thread_pool)
        finally:
            cv2.setNumThreads(cv2_threads)

    def spot_check(self):
        """Decode records spread over the source and check their labels (module notes); returns self.

        :func:`get_data_loaders` and :func:`folder_batches` call it on what they build.

        Raises
        ------
        DataError
            No record checked decodes, or one has a label outside ``num_classes``.
        """
        n = len(self.source)
        spots = np.unique(np.linspace(0, n - 1, min(_SPOT_DECODES, n)).astype(np.int64))
        decodable = 0
        for pos in spots:
            label, _, payload = self.source.read(pos)
            if payload is not None:
                self._refuse_label(int(pos), label)
                decodable += decode(payload) is not None
        if not decodable:
            raise DataError('%s: none of the %d records checked (spread over all %d) holds a decodable image; the '
                            'data is corrupt or not images' % (_source_name(self.source), len(spots), n))
        return self

    def _refuse_label(self, pos, label):
        problem = _label_error(label, self.num_classes)
        if problem:
            raise DataError('%s %s' % (self.source.describe(pos), problem))

    # -- epochs ------------------------------------------------------------------------------
    def batches_in_epoch(self, epoch):
        """Number of batches of training epoch ``epoch`` (of validation passes when not training)."""
        if not self.train:
            return _ceil_div(self.num_samples, self.batch_size)
        return self._window(epoch)[1]

    @property
    def num_batches(self):
        return self.batches_in_epoch(self.epoch)

    def __len__(self):
        return self.num_batches

    def set_epoch(self, epoch):
        """Make the next pass run epoch ``epoch`` (abandoning a pass in progress)."""
        if int(epoch) < 0:
            raise ValueError('epoch must be >= 0, got %r' % (epoch,))
        self.reset()
        self.epoch = int(epoch)

    def reset(self):
        """Abandon a pass in progress; the next pass starts the current epoch from its beginning."""
        if self._active is not None:
            self._active.close()
            self._active = None

    def close(self):
        """Stop the worker processes; the object cannot be iterated afterwards.

        The pool's own shutdown is given a few seconds, then the workers left
        are killed: it waits forever for a queue lock that a worker killed
        from outside may have held.
        """
        self.reset()
        pool = getattr(self._loader, '_worker_pool', None)
        if pool is not None:
            stop = threading.Thread(target=pool.terminate, name='stop data workers', daemon=True)
            stop.start()
            stop.join(_STOP_SECONDS)
            if stop.is_alive():
                for worker in list(getattr(pool, '_pool', None) or []):
                    if getattr(worker, 'exitcode', 0) is None:
                        worker.kill()
        self._loader = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _window(self, epoch):
        L, B = self._epoch_len, self.batch_size
        if self.last_batch == 'rollover':
            first = _ceil_div(epoch * L, B)
            return first * B, _ceil_div((epoch + 1) * L, B) - first
        return epoch * L, L // B

    def _order(self, epoch):
        """Source positions of this shard in epoch ``epoch``'s order, ``L`` of them."""
        if epoch not in self._orders:
            rng = np.random.default_rng((self.seed, _ORDER_TAG, epoch, self.num_parts, self.part_index))
            perm = rng.permutation(self.num_samples)
            perm = np.concatenate([perm, perm[:self._epoch_len - self.num_samples]])
            if len(self._orders) > 2:
                self._orders.pop(min(self._orders))
            self._orders[epoch] = self._positions[perm]
        return self._orders[epoch]

    def _stream(self, start, stop):
        """(positions, epochs) of stream places ``[start, stop)``: epochs' orders laid end to end."""
        L = self._epoch_len
        positions, epochs = [], []
        s = start
        while s < stop:
            e, j = divmod(s, L)
            n = min(stop - s, L - j)
            positions.append(self._order(e)[j:j + n])
            epochs.append(np.full(n, e, dtype=np.int64))
            s += n
        return np.concatenate(positions), np.concatenate(epochs)

    # -- passes ------------------------------------------------------------------------------
    def __iter__(self):
        if self._loader is None:
            raise RuntimeError('these batches were closed: build new ones to read %s again'
                               % _source_name(self.source))
        self.reset()
        self._active = self._train_pass() if self.train else self._val_pass()
        return self._active

    def _run(self, batches):
        """Decode batches given as lists of chunks ``(positions, epochs)``.

        Chunks go to the workers one by one; yields per batch ``(data, label, missing)``
        with the chunks' good samples joined (data None when there are none).
        """
        self._tasks.tasks = [chunk for chunks in batches for chunk in chunks]
        results = iter(self._loader)
        for chunks in batches:
            parts = []
            missing = 0
            for _ in chunks:
                data, label, bad, wrong = next(results)
                for pos, value in wrong:
                    self._refuse_label(pos, value)
                self._note_bad(bad)
                missing += len(bad)
                if data is not None:
                    parts.append((data, label))
            if len(parts) > 1:
                # On MXNet's engine threads, so the copy overlaps the next batch's wait.
                parts = [(mx.nd.concat(*[d for d, _ in parts], dim=0),
                          mx.nd.concat(*[l for _, l in parts], dim=0))]
            data, label = parts[0] if parts else (None, None)
            yield data, label, missing

    def _chunks(self, positions, epochs):
        c = self.chunk_size
        return [(positions[i:i + c], epochs[i:i + c]) for i in range(0, len(positions), c)]

    def _val_pass(self):
        B = self.batch_size
        batches = [self._chunks(self._positions[i:i + B], np.zeros(len(self._positions[i:i + B]), np.int64))
                   for i in range(0, self.num_samples, B)]
        for data, label, _ in self._run(batches):
            if data is not None:
                yield data, label

    def _train_pass(self):
        epoch = self.epoch
        start, count = self._window(epoch)
        B = self.batch_size
        batches = [self._chunks(*self._stream(start + i * B, start + (i + 1) * B)) for i in range(count)]
        spare = start + count * B
        for data, label, missing in self._run(batches):
            if missing:
                data, label, spare = self._complete(data, label, missing, spare, start)
            yield data, label
        self.epoch = epoch + 1
        self._active = None

    def _complete(self, data, label, missing, spare, start):
        """Fill a train batch short of ``missing`` samples from stream place ``spare`` on."""
        parts = [] if data is None else [(data.asnumpy(), label.asnumpy())]
        while missing:
            if spare - start > 2 * self._epoch_len + self.batch_size:
                raise DataError('%s: no decodable image found in a whole pass over shard %d of %d'
                                % (_source_name(self.source), self.part_index, self.num_parts))
            pos, ep = self._stream(spare, spare + 1)
            spare += 1
            d, l, bad, wrong = self._work[(pos, ep)]
            for p, value in wrong:
                self._refuse_label(p, value)
            self._note_bad(bad)
            if len(l):
                parts.append((d, l))
                missing -= 1
        data = mx.nd.array(np.concatenate([p[0] for p in parts]), dtype=parts[0][0].dtype)
        label = mx.nd.array(np.concatenate([p[1] for p in parts]), dtype=np.float32)
        return data, label, spare

    def _note_bad(self, bad):
        self.skipped += len(bad)
        for pos in bad:
            if pos not in self._warned:
                self._warned.add(pos)
                # Read again for the reason (once per record): the pixel limit, or a corrupt image.
                too_large = pixel_problem(self.source.read(pos)[2] or b'')
                warnings.warn('skipped an image: %s %s' % (self.source.describe(pos), too_large)
                              if too_large else 'skipped a corrupt image: %s does not decode'
                              % self.source.describe(pos), CorruptRecordWarning, stacklevel=3)


def _source_name(source):
    return getattr(source, 'rec', None) or getattr(source, 'root', '?')


def _check_options(batch_size, num_workers, input_size, crop_ratio, num_parts, part_index, seed,
                   mean, std, dtype, last_batch):
    if int(batch_size) < 1:
        raise ValueError('batch_size must be >= 1, got %r' % (batch_size,))
    if int(num_workers) < 0:
        raise ValueError('num_workers must be >= 0, got %r' % (num_workers,))
    if int(input_size) < 1:
        raise ValueError('input_size must be >= 1, got %r' % (input_size,))
    if not 0 < crop_ratio <= 1:
        raise ValueError('crop_ratio must be in (0, 1], got %r' % (crop_ratio,))
    if int(num_parts) < 1 or not 0 <= int(part_index) < int(num_parts):
        raise ValueError('need 0 <= part_index < num_parts, got part_index=%r num_parts=%r'
                         % (part_index, num_parts))
    if int(seed) < 0:
        raise ValueError('seed must be >= 0, got %r' % (seed,))
    if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
        raise ValueError('mean and std need 3 values (RGB), std > 0; got mean=%r std=%r' % (mean, std))
    if str(dtype) not in _DTYPES:
        raise ValueError('dtype must be one of %s, got %r' % (_DTYPES, dtype))
    if last_batch not in ('rollover', 'discard'):
        raise ValueError("last_batch must be 'rollover' or 'discard', got %r" % (last_batch,))


def record_class_names(rec):
    """Class names from ``<prefix>.classes.txt`` beside a packed ``.rec``, if there is one."""
    path = os.path.splitext(rec)[0] + '.classes.txt'
    if not os.path.isfile(path):
        return None
    with open(path, encoding='utf-8') as f:
        return [line.rstrip('\r\n') for line in f if line.strip()]


def get_data_loaders(rec_train=None, rec_train_idx=None, rec_val=None, rec_val_idx=None,
                     data_dir=None, batch_size=32, num_workers=4, input_size=IMAGENET.input_size,
                     crop_ratio=IMAGENET.crop_ratio, num_parts=1, part_index=0, seed=0, train=True, val=True,
                     mean=IMAGENET.mean, std=IMAGENET.std, dtype='float32', last_batch='rollover',
                     crop_area=(0.08, 1.0), aspect_ratio=(3. / 4., 4. / 3.), mirror=True,
                     jitter=0.4, lighting=0.1, thread_pool=False, shard_val=True, chunk_size=64,
                     image_folder=None, val_fraction=0.2, split_seed=0, num_classes=None):
    """Train and validation batches with GluonCV's ImageNet preprocessing.

    Parameters
    ----------
    rec_train, rec_train_idx, rec_val, rec_val_idx : str, optional
        Indexed RecordIO files (an ``.idx`` left out is taken beside its ``.rec``).
    data_dir : str, optional
        Instead of RecordIO: a folder with ``train/<class>/*`` and ``val/<class>/*``
        (labels: the sorted ``train`` class folders).
    image_folder : str, optional
        Instead: your own images, ``DIR/train/<class>/*`` + ``DIR/val/<class>/*``
        or one folder of classes split by ``val_fraction`` and ``split_seed``
        (:func:`gluon_asymmnet.data.folders.image_folder_sources`).
    val_fraction, split_seed : float, int
        The held-out split of a single ``image_folder``.
    batch_size : int
        Images per batch (per worker machine when sharded).
    num_workers : int
        Decoding processes per returned object (0: in the calling process).
    input_size : int
        Side of the square network input.
    crop_ratio : float
        Validation: the short side is resized to ``ceil(input_size / crop_ratio)``
        before the centre crop.
    num_parts, part_index : int
        Read shard ``part_index`` of ``num_parts`` (one per distributed worker).
    seed : int
        Seed of the shuffled order and the augmentation.
    train, val : bool
        Which of the two to build; each one asked for needs its data.
    mean, std : sequence of 3 float
        RGB normalisation on the 0-255 scale.
    dtype : {'float32', 'float16'}
        Type of the data arrays (labels are float32).
    last_batch : {'rollover', 'discard'}
        What happens to the samples left at the end of a training epoch (module notes).
    crop_area, aspect_ratio, mirror, jitter, lighting
        Train augmentation: random resized crop area fraction and aspect ratio
        ranges, horizontal flips, brightness/contrast/saturation strength, PCA
        lighting strength (GluonCV's ImageNet values by default).
    thread_pool : bool
        Decode in threads instead of processes.
    shard_val : bool
        Whether validation reads only shard ``part_index`` too (False: every
        worker validates on all of the data).
    chunk_size : int
        Most images one worker decodes per task (see :class:`ImageBatches`);
        batches do not depend on it.
    num_classes : int, optional
        The model's classes: every label read must be a class index below it
        (module notes).

    Returns
    -------
    (ImageBatches or None, ImageBatches or None)
        Train and validation batches.

    Raises
    ------
    DataError
        Before any batch is made, when a file or folder named is missing,
        unreadable or malformed, none of the records checked decodes, a label
        checked is not a class index, or data for a requested part is not
        given; during a pass, at the first label outside ``num_classes``.
    """
    _check_options(batch_size, num_workers, input_size, crop_ratio, num_parts, part_index, seed,
                   mean, std, dtype, last_batch)
    given = [n for n, v in (('RecordIO files', rec_train or rec_train_idx or rec_val or rec_val_idx),
                            ('data_dir', data_dir), ('image_folder', image_folder)) if v is not None]
    if len(given) > 1:
        raise ValueError('give one data source, not %s' % ' and '.join(given))
    train_src = val_src = None
    if image_folder is not None:
        train_src, val_src, _ = image_folder_sources(image_folder, val_fraction, split_seed)
    elif data_dir is not None:
        if not os.path.isdir(data_dir):
            raise DataError('data_dir %s does not exist' % data_dir if not os.path.exists(data_dir)
                            else 'data_dir %s is not a directory' % data_dir)
        train_root, val_root = os.path.join(data_dir, 'train'), os.path.join(data_dir, 'val')
        classes = None
        if train:
            train_src = FolderSource(train_root, min_classes=2)
            classes = train_src.class_names
        elif os.path.isdir(train_root):
            # Labels follow the training classes; their names suffice (no listing of every image).
            classes = class_folder_names(train_root)
        if val:
            val_src = FolderSource(val_root, classes)
            val_src.class_names = classes or val_src.class_names
    else:
        if train:
            if rec_train is None:
                raise DataError('training data needed: give rec_train (and rec_train_idx) or data_dir')
            train_src = RecordSource(rec_train, rec_train_idx)
            train_src.class_names = record_class_names(rec_train)
        if val:
            if rec_val is None:
                raise DataError('validation data needed: give rec_val (and rec_val_idx) or data_dir, '
                                'or pass val=False')
            val_src = RecordSource(rec_val, rec_val_idx)
            val_src.class_names = record_class_names(rec_val)
    common = dict(batch_size=batch_size, input_size=input_size, crop_ratio=crop_ratio,
                  num_parts=num_parts, part_index=part_index, seed=seed, mean=mean, std=std,
                  dtype=dtype, num_workers=num_workers, thread_pool=thread_pool, chunk_size=chunk_size,
                  num_classes=num_classes)
    augment = dict(area=tuple(crop_area), ratio=tuple(aspect_ratio), mirror=mirror,
                   jitter=jitter, lighting=lighting)
    train_batches = ImageBatches(train_src, True, last_batch=last_batch, augment=augment,
                                 **common).spot_check() if train else None
    if not shard_val:
        common.update(num_parts=1, part_index=0)
    val_batches = ImageBatches(val_src, False, **common).spot_check() if val else None
    return train_batches, val_batches


def folder_batches(root, batch_size=32, input_size=IMAGENET.input_size, crop_ratio=IMAGENET.crop_ratio,
                   num_workers=0, classes=None, mean=IMAGENET.mean, std=IMAGENET.std, dtype='float32'):
    """Validation-style batches over ``root/<class>/<image>`` (any folder of images).

    Parameters
    ----------
    root : str
        Folder of class subfolders.
    classes : sequence of str or dict, optional
        Label of each folder name: a list (label = position, e.g. all 1000
        ImageNet synsets) or ``{folder name: label}``; needed when the folder
        holds a subset of the classes a model knows. Default: sorted subfolders.

    Returns
    -------
    ImageBatches
        With ``num_samples`` and ``class_names`` (the subfolders read, sorted).
    """
    _check_options(batch_size, num_workers, input_size, crop_ratio, 1, 0, 0, mean, std, dtype,
                   'discard')
    source = FolderSource(root, classes)
    return ImageBatches(source, False, batch_size=batch_size, input_size=input_size,
                        crop_ratio=crop_ratio, mean=mean, std=std, dtype=dtype,
                        num_workers=num_workers).spot_check()
