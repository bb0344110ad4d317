"""Data pipeline: packing, RecordIO/folder sources, preprocessing, determinism, sharding, errors, demo data."""
import json
import os
import struct
import subprocess
import sys
import warnings

import cv2
import mxnet as mx
import numpy as np
import pytest

from gluon_asymmnet.data import (CorruptRecordWarning, DataError, ImageBatches, RecordSource,
                                 demo_dataset, folder_batches, get_data_loaders)
from gluon_asymmnet.data.digits import digits_split
from gluon_asymmnet.data.transforms import MEAN_RGB, STD_RGB, colour_matrix, decode, train_image, val_image
from gluon_asymmnet.pack import main as pack_main, pack_arrays, pack_folder

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MEAN = np.array(MEAN_RGB, dtype=np.float32).reshape(1, 3, 1, 1)
STD = np.array(STD_RGB, dtype=np.float32).reshape(1, 3, 1, 1)
SIZE = 32


def smooth_image(seed, h, w):
    """A deterministic, JPEG-friendly RGB image (upscaled noise)."""
    rs = np.random.RandomState(seed)
    small = rs.randint(0, 256, size=(4, 5, 3)).astype(np.float32)
    return np.clip(cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR), 0, 255).astype(np.uint8)


def pixels(data):
    """Undo the normalisation: NCHW batch -> float RGB values on the 0-255 scale."""
    return data.asnumpy().astype(np.float32) * STD + MEAN


def records(rec, idx):
    reader = mx.recordio.MXIndexedRecordIO(idx, rec, 'r')
    out = [mx.recordio.unpack(reader.read_idx(k)) for k in sorted(reader.keys)]
    reader.close()
    return out


@pytest.fixture(scope='session')
def image_folder(tmp_path_factory):
    """data/{train,val}/<class>/* with 3 classes; train has a PNG and non-square JPEGs."""
    base = tmp_path_factory.mktemp('folder')
    shapes = [(40, 56), (56, 40), (48, 48)]
    for split, per_class in (('train', 7), ('val', 4)):
        for c in range(3):
            d = base / split / ('class%d' % c)
            d.mkdir(parents=True)
            for i in range(per_class):
                img = smooth_image(1000 * c + 10 * i + (split == 'val'), *shapes[i % 3])
                ext = '.png' if (split, c, i) == ('train', 1, 0) else '.JPEG'
                cv2.imwrite(str(d / ('img%02d%s' % (i, ext))), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        (base / split / 'class0' / 'notes.txt').write_text('not an image')
    return str(base)


@pytest.fixture(scope='session')
def packed(image_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp('packed')
    return {split: pack_folder(os.path.join(image_folder, split), str(out / split), num_workers=2)
            for split in ('train', 'val')}


@pytest.fixture(scope='session')
def id_records(tmp_path_factory):
    """45 records whose label is their own key, to follow samples through the pipeline."""
    n = 45
    images = [smooth_image(i, 36 + i % 5, 40) for i in range(n)]
    prefix = str(tmp_path_factory.mktemp('ids') / 'ids')
    out = pack_arrays(images, np.arange(n), prefix)
    return out['rec'], out['idx'], n


def epoch_labels(batches, epoch):
    batches.set_epoch(epoch)
    return [b[1].asnumpy().astype(int) for b in batches]


# -- packing ---------------------------------------------------------------------------------

def test_pack_folder_round_trip(image_folder, packed):
    info = packed['train']
    assert info['classes'] == ['class0', 'class1', 'class2'] and info['num_images'] == 21
    assert info['skipped'] == [(os.path.join(image_folder, 'train', 'class0', 'notes.txt'),
                                'is not an image format OpenCV reads (.txt)')]
    with open(info['classes_file']) as f:
        assert f.read().split() == info['classes']
    recs = records(info['rec'], info['idx'])
    files = [os.path.join(image_folder, 'train', c, f) for c in info['classes']
             for f in sorted(os.listdir(os.path.join(image_folder, 'train', c))) if not f.endswith('.txt')]
    assert [int(h.label) for h, _ in recs] == [i // 7 for i in range(21)]
    assert [h.id for h, _ in recs] == list(range(21))
    for (header, payload), path in zip(recs, files):
        raw = open(path, 'rb').read()
        if path.endswith('.JPEG'):
            assert payload == raw  # passed through byte for byte
        else:
            assert payload[:2] == b'\xff\xd8'  # the PNG became a JPEG of the same picture
            err = np.abs(cv2.imdecode(np.frombuffer(payload, np.uint8), 1).astype(int)
                         - cv2.imread(path).astype(int))
            assert err.mean() < 2.0


def test_pack_resize_shrinks_short_side(image_folder, tmp_path):
    info = pack_folder(os.path.join(image_folder, 'val'), str(tmp_path / 'small'), resize=20,
                       quality=90, num_workers=0, progress=False)
    shapes = {cv2.imdecode(np.frombuffer(p, np.uint8), 1).shape[:2] for _, p in records(info['rec'], info['idx'])}
    assert shapes == {(20, 28), (28, 20), (20, 20)}


def test_pack_arrays_readable_by_image_record_iter(tmp_path):
    images = np.stack([smooth_image(i, SIZE, SIZE) for i in range(10)])
    labels = np.array([3, 1, 4, 1, 5, 9, 2, 6, 5, 3])
    info = pack_arrays(images, labels, str(tmp_path / 'arr'))
    it = mx.io.ImageRecordIter(path_imgrec=info['rec'], path_imgidx=info['idx'], data_shape=(3, SIZE, SIZE),
                               batch_size=5, shuffle=False, preprocess_threads=1)
    got_x, got_y = [], []
    for batch in it:
        got_x.append(batch.data[0].asnumpy())
        got_y.append(batch.label[0].asnumpy())
    np.testing.assert_array_equal(np.concatenate(got_y), labels)
    got_x = np.concatenate(got_x)
    # MXNet's C++ decoder sees exactly the pixels our decoder sees ...
    ours = np.stack([decode(p) for _, p in records(info['rec'], info['idx'])]).transpose(0, 3, 1, 2)
    assert np.abs(got_x - ours).max() <= 1
    # ... which are the packed RGB images up to JPEG loss, channels not swapped.
    want = images.transpose(0, 3, 1, 2).astype(np.float32)
    assert np.abs(got_x - want).mean() < 4.0 < np.abs(got_x - want[:, ::-1]).mean()


def test_pack_rejects_bad_arrays(tmp_path):
    with pytest.raises(ValueError, match='3 images but 2 labels'):
        pack_arrays(np.zeros((3, 8, 8, 3), np.uint8), [0, 1], str(tmp_path / 'x'))
    with pytest.raises(ValueError, match=r'image 0 must be uint8 \(H, W, 3\)'):
        pack_arrays(np.zeros((1, 8, 8), np.float32), [0], str(tmp_path / 'x'))


def test_pack_cli(image_folder, tmp_path, capsys):
    assert pack_main([os.path.join(image_folder, 'val'), str(tmp_path / 'cli'), '--resize', '24', '-j', '1']) == 0
    out = capsys.readouterr().out
    assert 'packed 12 images of 3 classes' in out and os.path.isfile(str(tmp_path / 'cli.idx'))
    missing = str(tmp_path / 'nowhere')
    assert pack_main([missing, str(tmp_path / 'cli2')]) == 2
    assert missing in capsys.readouterr().err


def test_pack_subset_keeps_training_labels(image_folder, packed, tmp_path):
    import shutil
    for c in ('class1', 'class2'):
        shutil.copytree(os.path.join(image_folder, 'val', c), str(tmp_path / 'subset' / c))
    assert pack_main([str(tmp_path / 'subset'), str(tmp_path / 'sub'), '--classes',
                      packed['train']['classes_file'], '-j', '1']) == 0
    labels = [int(h.label) for h, _ in records(str(tmp_path / 'sub.rec'), str(tmp_path / 'sub.idx'))]
    assert labels == [1] * 4 + [2] * 4  # not 0 and 1: the training file's labels
    (tmp_path / 'subset' / 'extra').mkdir()
    with pytest.raises(DataError, match='extra'):
        pack_folder(str(tmp_path / 'subset'), str(tmp_path / 'sub2'), classes=['class1', 'class2'])


def test_pack_leaves_out_undecodable_files(tmp_path):
    for c in ('a', 'b'):
        (tmp_path / 'src' / c).mkdir(parents=True)
        cv2.imwrite(str(tmp_path / 'src' / c / 'good.jpg'), smooth_image(0, 20, 20))
    (tmp_path / 'src' / 'b' / 'broken.jpg').write_bytes(b'\xff\xd8 this is not a jpeg')
    with pytest.warns(UserWarning, match='broken.jpg'):
        info = pack_folder(str(tmp_path / 'src'), str(tmp_path / 'out'), num_workers=0)
    assert info['num_images'] == 2 and [os.path.basename(p) for p, _ in info['skipped']] == ['broken.jpg']


def test_record_source_reads_split_records(tmp_path):
    """A payload holding the RecordIO magic number is stored in parts; we must rejoin them like MXNet."""
    rec, idx = str(tmp_path / 'm.rec'), str(tmp_path / 'm.idx')
    magic = struct.pack('<I', 0xced7230a)
    payloads = [b'abcd' + magic + b'efgh' + magic + magic + b'xyz', b'plain record', magic * 3]
    w = mx.recordio.MXIndexedRecordIO(idx, rec, 'w')
    for k, p in enumerate(payloads):
        w.write_idx(k, p)
    w.close()
    source = RecordSource(rec, idx)
    assert [source.read_record(k) for k in range(3)] == payloads


# -- preprocessing ---------------------------------------------------------------------------

def test_val_resize_and_centre_crop_geometry():
    """A 100x200 ramp image (R = x, G = 2y): the centre crop must sample the predicted coordinates."""
    h, w = 100, 200
    ys, xs = np.mgrid[0:h, 0:w]
    img = np.stack([xs, 2 * ys, np.full_like(xs, 77)], axis=-1).astype(np.uint8)
    out = val_image(img, 32, crop_ratio=0.5)  # short side -> 64, long side -> 128, crop from (48, 16)
    assert out.shape == (32, 32, 3)
    scale = w / 128.0
    expect_x = (48 + np.arange(32) + 0.5) * scale - 0.5
    expect_y = 2 * ((16 + np.arange(32) + 0.5) * scale - 0.5)
    assert np.abs(out[:, :, 0].astype(float) - expect_x[None, :]).max() <= 1.0
    assert np.abs(out[:, :, 1].astype(float) - expect_y[:, None]).max() <= 1.0
    assert (out[:, :, 2] == 77).all()


@pytest.mark.parametrize('shape', [(37, 59), (59, 37), (64, 64), (30, 90)])
def test_val_image_matches_gluon_resize_and_centre_crop(shape):
    img = smooth_image(7, *shape)
    size, ratio = 24, 0.875
    ref = mx.nd.image.resize(mx.nd.array(img, dtype='uint8'), int(np.ceil(size / ratio)), True, 1)
    ref = mx.image.center_crop(ref, (size, size))[0].asnumpy()
    np.testing.assert_array_equal(val_image(img, size, ratio), ref)


def test_train_crop_and_flip_geometry():
    img = smooth_image(3, 48, 48)
    full = cv2.resize(img, (SIZE, SIZE), interpolation=cv2.INTER_LINEAR)
    outs = [train_image(img, SIZE, np.random.default_rng(s), area=(1, 1), ratio=(1, 1),
                        jitter=0, lighting=0) for s in range(12)]
    flipped = [np.array_equal(o, full[:, ::-1]) for o in outs]
    assert all(f or np.array_equal(o, full) for f, o in zip(flipped, outs))
    assert 0 < sum(flipped) < len(outs)
    # area 1/4, aspect 1: a 24x24 window of the 48x48 image, resized.
    small = train_image(img, 24, np.random.default_rng(0), area=(0.25, 0.25), ratio=(1, 1), mirror=False,
                        jitter=0, lighting=0)
    windows = [img[y:y + 24, x:x + 24] for y in range(25) for x in range(25)]
    assert any(np.array_equal(small, wdw) for wdw in windows)


def test_colour_matrix_composes_jitter_and_lighting():
    """The one-pass affine map equals brightness/contrast/saturation/lighting applied one by one."""
    img = smooth_image(5, 16, 16).astype(np.float64)
    grey_w = np.array([0.299, 0.587, 0.114])
    for seed in range(5):
        m = colour_matrix(img.reshape(-1, 3).mean(0), np.random.default_rng(seed), 0.4, 0.1)
        rng = np.random.default_rng(seed)
        x = img.copy()
        for op in rng.permutation(3):
            a = 1 + rng.uniform(-0.4, 0.4)
            grey = x @ grey_w
            if op == 0:
                x = a * x
            elif op == 1:
                x = a * x + (1 - a) * grey.mean()
            else:
                x = a * x + (1 - a) * grey[..., None]
        eigval = np.array([55.46, 4.794, 1.148])
        eigvec = np.array([[-0.5675, 0.7192, 0.4009], [-0.5808, -0.0045, -0.8140],
                           [-0.5836, -0.6948, 0.4203]])
        x = x + eigvec @ (rng.normal(0, 0.1, 3) * eigval)
        got = img @ m[:, :3].T + m[:, 3]
        np.testing.assert_allclose(got, x, atol=1e-9)


# -- loaders ---------------------------------------------------------------------------------

def test_folder_and_record_val_batches_agree(image_folder, packed):
    _, val_rec = get_data_loaders(rec_val=packed['val']['rec'], rec_val_idx=packed['val']['idx'], train=False,
                                  batch_size=5, num_workers=0, input_size=SIZE)
    _, val_dir = get_data_loaders(data_dir=image_folder, train=False, batch_size=5, num_workers=0, input_size=SIZE)
    assert val_rec.num_samples == val_dir.num_samples == 12
    assert val_rec.num_batches == val_dir.num_batches == 3
    assert val_rec.class_names == val_dir.class_names == ['class0', 'class1', 'class2']
    a, b = list(val_rec), list(val_dir)
    assert [x.shape[0] for x, _ in a] == [5, 5, 2]
    for (xa, ya), (xb, yb) in zip(a, b):
        assert xa.dtype == np.float32 and xa.shape[1:] == (3, SIZE, SIZE)
        np.testing.assert_array_equal(xa.asnumpy(), xb.asnumpy())
        np.testing.assert_array_equal(ya.asnumpy(), yb.asnumpy())
    np.testing.assert_array_equal(np.concatenate([y.asnumpy() for _, y in a]), np.repeat([0, 1, 2], 4))
    # The normalisation undone gives the val crop of the source image.
    first = cv2.cvtColor(cv2.imread(os.path.join(image_folder, 'val', 'class0', 'img00.JPEG')), cv2.COLOR_BGR2RGB)
    np.testing.assert_allclose(pixels(a[0][0])[0].transpose(1, 2, 0), val_image(first, SIZE), atol=1e-3)


def test_train_batches_from_folder(image_folder):
    train, val = get_data_loaders(data_dir=image_folder, batch_size=4, num_workers=0, input_size=SIZE, seed=3)
    assert (train.num_samples, val.num_samples) == (21, 12)
    batches = list(train)
    assert len(batches) == train.batches_in_epoch(0) == 6  # ceil(21/4)
    assert all(x.shape == (4, 3, SIZE, SIZE) and y.shape == (4,) for x, y in batches)
    assert set(np.concatenate([y.asnumpy() for _, y in batches]).astype(int)) == {0, 1, 2}
    _, half = get_data_loaders(data_dir=image_folder, train=False, batch_size=4, num_workers=0, input_size=SIZE,
                               dtype='float16')
    x16, x32 = next(iter(half))[0], next(iter(val))[0]
    assert x16.dtype == np.float16
    np.testing.assert_allclose(x16.asnumpy(), x32.asnumpy(), atol=2e-2)


def test_train_deterministic_per_seed_epoch_and_workers(id_records):
    rec, idx, _ = id_records
    # OpenCV threads busy in the parent before the workers fork must not hang them.
    cv2.resize(np.zeros((1600, 1600, 3), np.uint8), (900, 900))
    kw = dict(rec_train=rec, rec_train_idx=idx, val=False, batch_size=8, input_size=SIZE, seed=11)
    inline, _ = get_data_loaders(num_workers=0, **kw)
    pooled, _ = get_data_loaders(num_workers=2, **kw)
    threads, _ = get_data_loaders(num_workers=2, thread_pool=True, chunk_size=3, **kw)
    try:
        run0 = [(x.asnumpy(), y.asnumpy()) for x, y in inline]
        assert inline.epoch == 1  # a complete pass moves on to the next epoch
        run1 = [(x.asnumpy(), y.asnumpy()) for x, y in inline]
        for other in (pooled, threads):
            other.set_epoch(1)  # a resumed run starts straight at epoch 1
            again = [(x.asnumpy(), y.asnumpy()) for x, y in other]
            assert len(again) == len(run1)
            for (xa, ya), (xb, yb) in zip(run1, again):
                np.testing.assert_array_equal(xa, xb)
                np.testing.assert_array_equal(ya, yb)
        assert not np.array_equal(run0[0][1], run1[0][1])  # a new order each epoch
        # Same record in two epochs: different augmentation.
        key = run0[0][1][0]
        x0 = run0[0][0][0]
        x1 = next(x[list(y).index(key)] for x, y in run1 if key in y)
        assert not np.array_equal(x0, x1)
        # Different seed, different order.
        other_seed, _ = get_data_loaders(num_workers=0, **dict(kw, seed=12))
        assert not np.array_equal(next(iter(other_seed))[1].asnumpy(), run0[0][1])
        # reset() abandons a pass and restarts the same epoch.
        inline.set_epoch(0)
        next(iter(inline))
        inline.reset()
        np.testing.assert_array_equal(next(iter(inline))[0].asnumpy(), run0[0][0])
    finally:
        pooled.close()
        threads.close()
    with pytest.raises(RuntimeError, match='closed'):
        iter(pooled)


def test_rollover_carries_the_remainder_into_the_next_epoch(id_records):
    rec, idx, n = id_records
    train, _ = get_data_loaders(rec_train=rec, rec_train_idx=idx, val=False, batch_size=8, num_workers=0,
                                input_size=8, jitter=0, lighting=0)
    epochs = 4
    per_epoch = [np.concatenate(epoch_labels(train, e)) for e in range(epochs)]
    assert [len(p) // 8 for p in per_epoch] == [6, 6, 5, 6]  # ceil((e+1)45/8) - ceil(45e/8)
    stream = np.concatenate(per_epoch)
    assert len(stream) == 8 * -(-epochs * n // 8)
    for k in range(epochs):  # laid end to end, every epoch's 45 places hold each image once
        assert sorted(stream[k * n:(k + 1) * n]) == list(range(n))
    discard, _ = get_data_loaders(rec_train=rec, rec_train_idx=idx, val=False, batch_size=8, num_workers=0,
                                  input_size=8, last_batch='discard', jitter=0, lighting=0)
    for e in range(2):
        labels = np.concatenate(epoch_labels(discard, e))
        assert len(labels) == 40 and len(set(labels)) == 40


class _Sized(object):
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n


def test_imagenet_epoch_lengths_follow_round_batch():
    """1,281,167 images at 2048: epochs of 625/626 batches, ceil(e N / B) updates after e epochs.

    docs/design.md section 5.
    """
    n, b = 1281167, 2048
    batches = ImageBatches(_Sized(n), True, batch_size=b)
    counts = [batches.batches_in_epoch(e) for e in range(360)]
    assert set(counts) == {625, 626}
    assert all(sum(counts[:e]) == -(-e * n // b) for e in range(361))
    discard = ImageBatches(_Sized(n), True, batch_size=b, last_batch='discard')
    assert discard.batches_in_epoch(7) == 625


def test_sharding_disjoint_complete_and_in_step(id_records):
    rec, idx, n = id_records
    parts = 4
    vals, trains = [], []
    for p in range(parts):
        t, v = get_data_loaders(rec_train=rec, rec_train_idx=idx, rec_val=rec, rec_val_idx=idx, batch_size=4,
                                num_workers=0, input_size=8, num_parts=parts, part_index=p, jitter=0, lighting=0)
        vals.append(np.concatenate([y.asnumpy() for _, y in v]).astype(int))
        trains.append(t)
    assert sorted(len(v) for v in vals) == [11, 11, 11, 12]
    assert [t.num_samples for t in trains] == [len(v) for v in vals]
    assert sorted(np.concatenate(vals)) == list(range(n))  # disjoint and complete
    for e in range(3):
        counts = [t.batches_in_epoch(e) for t in trains]
        assert len(set(counts)) == 1  # dist_sync workers stay in step
        for t, v in zip(trains, vals):
            labels = np.concatenate(epoch_labels(t, e))
            assert len(labels) == 4 * counts[0]
            assert set(labels) <= set(v)  # a worker reads only its own shard
    _, whole = get_data_loaders(rec_val=rec, rec_val_idx=idx, train=False, num_parts=parts, part_index=1,
                                shard_val=False, num_workers=0)
    assert whole.num_samples == n
    with pytest.raises(ValueError, match='part_index'):
        get_data_loaders(rec_train=rec, val=False, num_parts=2, part_index=2)


def test_corrupt_record_skipped_counted_and_batch_kept_full(tmp_path):
    rec, idx = str(tmp_path / 'c.rec'), str(tmp_path / 'c.idx')
    w = mx.recordio.MXIndexedRecordIO(idx, rec, 'w')
    for k in range(20):
        if k == 5:
            payload = b'\xff\xd8\xff\xe0 garbage, not a JPEG'
        else:
            payload = cv2.imencode('.jpg', smooth_image(k, 20, 20))[1].tobytes()
        w.write_idx(k, mx.recordio.pack(mx.recordio.IRHeader(0, float(k), k, 0), payload))
    w.close()
    train, val = get_data_loaders(rec, idx, rec, idx, batch_size=4, num_workers=2, input_size=8, chunk_size=3)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            for e in range(2):
                labels = np.concatenate(epoch_labels(train, e))
                assert len(labels) == 4 * train.batches_in_epoch(e) and 5 not in labels
            assert train.skipped == 2  # met once per epoch
            got = np.concatenate([y.asnumpy() for _, y in val]).astype(int)
        assert sorted(got) == [k for k in range(20) if k != 5] and val.skipped == 1
        messages = [str(c.message) for c in caught if issubclass(c.category, CorruptRecordWarning)]
        assert any('record 5 of %s' % rec in m for m in messages)
    finally:
        train.close()
        val.close()


def test_folder_batches_with_class_subset(image_folder):
    root = os.path.join(image_folder, 'val')
    batches = folder_batches(root, batch_size=8, input_size=SIZE, classes={'class0': 7, 'class1': 3, 'class2': 9})
    assert batches.num_samples == 12 and batches.class_names == ['class0', 'class1', 'class2']
    labels = np.concatenate([y.asnumpy() for _, y in batches]).astype(int)
    np.testing.assert_array_equal(labels, np.repeat([7, 3, 9], 4))
    with pytest.raises(DataError, match='class2'):
        folder_batches(root, classes=['class0', 'class1'])


def test_val_folder_labels_follow_training_classes(tmp_path):
    for split, names in (('train', 'abc'), ('val', 'bc')):
        for c in names:
            (tmp_path / split / c).mkdir(parents=True)
            cv2.imwrite(str(tmp_path / split / c / 'x.jpg'), smooth_image(ord(c), 20, 20))
    _, val = get_data_loaders(data_dir=str(tmp_path), train=False, num_workers=0, input_size=8)
    assert val.class_names == ['a', 'b', 'c']
    np.testing.assert_array_equal(next(iter(val))[1].asnumpy(), [1, 2])
    (tmp_path / 'val' / 'd').mkdir()
    with pytest.raises(DataError, match='not among the 3 known classes: d'):
        get_data_loaders(data_dir=str(tmp_path), train=False)


# -- errors ----------------------------------------------------------------------------------

def test_missing_and_malformed_files_are_named(packed, tmp_path):
    rec, idx = packed['val']['rec'], packed['val']['idx']
    missing = str(tmp_path / 'missing.rec')
    with pytest.raises(DataError, match='RecordIO file %s does not exist' % missing):
        get_data_loaders(rec_train=missing, rec_train_idx=idx, val=False)
    with pytest.raises(DataError, match='index file .*missing.idx does not exist'):
        get_data_loaders(rec_train=rec, rec_train_idx=str(tmp_path / 'missing.idx'), val=False)
    # A good train pair does not hide a bad val file: everything is checked before any batches exist.
    with pytest.raises(DataError, match='missing.rec'):
        get_data_loaders(rec_train=rec, rec_train_idx=idx, rec_val=missing)
    with pytest.raises(DataError, match='validation data needed'):
        get_data_loaders(rec_train=rec, rec_train_idx=idx)
    garbage = tmp_path / 'garbage.rec'
    garbage.write_bytes(os.urandom(4096))
    with pytest.raises(DataError, match='%s is not a RecordIO file' % garbage):
        get_data_loaders(rec_train=str(garbage), rec_train_idx=idx, val=False)
    bad_idx = tmp_path / 'bad.idx'
    bad_idx.write_text('0\t0\nthis is not an index\n')
    with pytest.raises(DataError, match='bad.idx, line 2'):
        get_data_loaders(rec_train=rec, rec_train_idx=str(bad_idx), val=False)
    far_idx = tmp_path / 'far.idx'
    far_idx.write_text('0\t0\n1\t99999999\n')
    with pytest.raises(DataError, match='record 1 at offset 99999999 lies outside'):
        get_data_loaders(rec_train=rec, rec_train_idx=str(far_idx), val=False)
    shifted_idx = tmp_path / 'shifted.idx'
    shifted_idx.write_text('0\t12\n1\t24\n')
    with pytest.raises(DataError, match='holds no record at offset 12, where index .*shifted.idx puts record 0 '
                                        r'\(2 of 2 records checked'):
        get_data_loaders(rec_train=rec, rec_train_idx=str(shifted_idx), val=False)
    with pytest.raises(DataError, match='is a directory'):
        get_data_loaders(rec_train=str(tmp_path), rec_train_idx=idx, val=False)
    with pytest.raises(DataError, match='image folder .*train does not exist'):
        get_data_loaders(data_dir=str(tmp_path))


@pytest.mark.skipif(hasattr(os, 'geteuid') and os.geteuid() == 0, reason='root reads any file')
def test_unreadable_file_is_named(packed, tmp_path):
    locked = tmp_path / 'locked.rec'
    locked.write_bytes(open(packed['val']['rec'], 'rb').read())
    locked.chmod(0)
    with pytest.raises(DataError, match='locked.rec cannot be read'):
        get_data_loaders(rec_train=str(locked), rec_train_idx=packed['val']['idx'], val=False)


# -- demo data -------------------------------------------------------------------------------

def test_demo_dataset_fixed_split_idempotent_and_repaired(tmp_path):
    root = str(tmp_path / 'digits')
    ds = demo_dataset(root)
    assert (ds['num_train'], ds['num_val'], ds['input_size'], len(ds['classes'])) == (1438, 359, 32, 10)
    train, val = records(ds['rec_train'], ds['rec_train_idx']), records(ds['rec_val'], ds['rec_val_idx'])
    assert (len(train), len(val)) == (1438, 359)
    train_ids, val_ids = {h.id2 for h, _ in train}, {h.id2 for h, _ in val}
    assert not train_ids & val_ids and len(train_ids | val_ids) == 1797
    from sklearn.datasets import load_digits
    target = load_digits().target
    # Stratified: every class gives round(20 %) of its images to val, and record labels are the digits.
    for c in range(10):
        assert sum(target[i] == c for i in val_ids) == round(0.2 * (target == c).sum())
    assert all(int(h.label) == target[h.id2] for h, _ in train + val)
    expect_train, expect_val = digits_split(target)
    assert sorted(val_ids) == expect_val.tolist() and sorted(train_ids) == expect_train.tolist()
    img = cv2.imdecode(np.frombuffer(val[0][1], np.uint8), 1)
    assert img.shape == (32, 32, 3)
    # Idempotent: a second call rewrites nothing.
    stamp = os.stat(ds['rec_train']).st_mtime_ns
    again = demo_dataset(root)
    assert ds.pop('packed') and not again.pop('packed')
    assert again == ds and os.stat(ds['rec_train']).st_mtime_ns == stamp
    # A damaged file is noticed and re-packed to the same bytes.
    with open(os.path.join(root, 'manifest.json')) as f:
        manifest = json.load(f)
    with open(ds['rec_val'], 'r+b') as f:
        f.truncate(1000)
    assert demo_dataset(root)['packed']
    with open(ds['rec_val'], 'rb') as f:
        import hashlib
        assert hashlib.sha256(f.read()).hexdigest() == manifest['sha256']['digits_val.rec']


def test_demo_dataset_concurrent_calls_and_default_root(tmp_path):
    code = ('import sys; from gluon_asymmnet.data import demo_dataset; '
            'ds = demo_dataset(); print(ds["rec_train"], ds["num_train"], ds["packed"])')
    env = dict(os.environ, MXNET_HOME=str(tmp_path / 'home'), PYTHONPATH=ROOT)
    procs = [subprocess.Popen([sys.executable, '-c', code], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    expected = '%s 1438' % (tmp_path / 'home' / 'datasets' / 'digits' / 'digits_train.rec')
    for (out, err), p in zip(outs, procs):
        assert p.returncode == 0, err
    # Both get the files; the lock lets only one of them pack.
    assert sorted(out.strip() for out, _ in outs) == [expected + ' False', expected + ' True']
    ds = demo_dataset(str(tmp_path / 'home' / 'datasets' / 'digits'))
    train, val = get_data_loaders(ds['rec_train'], ds['rec_train_idx'], ds['rec_val'], ds['rec_val_idx'],
                                  batch_size=64, num_workers=0, input_size=ds['input_size'], **ds['augment'])
    assert (train.num_samples, val.num_samples) == (1438, 359)
    x, y = next(iter(val))
    assert x.shape == (64, 3, 32, 32) and set(y.asnumpy().astype(int)) <= set(range(10))
