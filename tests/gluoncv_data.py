"""Small drawn datasets in the layouts GluonCV's pose and detection scripts read.

:func:`write_voc` writes Pascal VOC (``VOC2007``/``VOC2012`` with
``ImageSets/Main``, ``Annotations/*.xml``, ``JPEGImages``): each object a
filled shape whose form and colour say its class. :func:`write_coco_keypoints`
writes COCO keypoints (``annotations/person_keypoints_<split>.json``,
``<split>/<id>.jpg``): each person a stick figure whose 17 joints are discs,
one colour per left/right pair (so a horizontal flip, which swaps the pairs'
labels, keeps every label on its colour). Both are learnable by a small
network in a few epochs (benchmarks/learn_downstream.py) and serve the tests
at a few images.
"""
import json
import os

import cv2
import numpy as np

# (VOC class, shape, BGR colour): the classes the drawn objects take.
VOC_SHAPES = (('aeroplane', 'box', (40, 40, 220)), ('bicycle', 'disc', (40, 200, 40)),
              ('bird', 'triangle', (220, 60, 40)))

# COCO's 17 keypoints of a person standing, facing the camera, in a unit box (x, y); the person's
# left is the image's right.
_FIGURE = np.array([
    (0.50, 0.08), (0.56, 0.05), (0.44, 0.05), (0.62, 0.08), (0.38, 0.08),   # nose, eyes, ears
    (0.70, 0.25), (0.30, 0.25), (0.80, 0.42), (0.20, 0.42),                 # shoulders, elbows
    (0.85, 0.58), (0.15, 0.58), (0.62, 0.58), (0.38, 0.58),                 # wrists, hips
    (0.64, 0.78), (0.36, 0.78), (0.65, 0.97), (0.35, 0.97)])                # knees, ankles
# One colour per joint and its mirror twin (BGR).
_GROUP = (0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8)
_COLOURS = ((0, 0, 255), (0, 255, 255), (255, 0, 255), (0, 255, 0), (255, 0, 0), (255, 255, 0),
            (0, 128, 255), (128, 0, 255), (255, 255, 255))
_LIMBS = ((5, 7), (7, 9), (6, 8), (8, 10), (5, 6), (11, 12), (5, 11), (6, 12), (11, 13), (13, 15),
          (12, 14), (14, 16), (0, 5), (0, 6))


def _background(rng, height, width):
    base = rng.randint(60, 160)
    img = base + rng.randint(-25, 26, size=(height, width, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def _draw_object(img, shape, colour, box):
    x0, y0, x1, y1 = box
    if shape == 'box':
        cv2.rectangle(img, (x0, y0), (x1 - 1, y1 - 1), colour, -1)
    elif shape == 'disc':
        cv2.ellipse(img, (((x0 + x1) / 2, (y0 + y1) / 2), (x1 - x0 - 1, y1 - y0 - 1), 0), colour, -1)
    else:
        pts = np.array([((x0 + x1) // 2, y0), (x0, y1 - 1), (x1 - 1, y1 - 1)], np.int32)
        cv2.fillPoly(img, [pts], colour)


def _voc_xml(image_id, width, height, objects):
    lines = ['<annotation>', '  <folder>VOC</folder>', '  <filename>%s.jpg</filename>' % image_id,
             '  <size><width>%d</width><height>%d</height><depth>3</depth></size>' % (width, height)]
    for name, box in objects:
        # VOC boxes are 1-based.
        lines += ['  <object>', '    <name>%s</name>' % name, '    <difficult>0</difficult>',
                  '    <bndbox><xmin>%d</xmin><ymin>%d</ymin><xmax>%d</xmax><ymax>%d</ymax></bndbox>'
                  % tuple(v + 1 for v in box), '  </object>']
    return '\n'.join(lines + ['</annotation>', ''])


def write_voc(root, splits=((2007, 'trainval', 4), (2012, 'trainval', 4), (2007, 'test', 4)), size=(96, 96),
              seed=0, max_objects=2):
    """Write a drawn Pascal VOC dataset under ``root`` (GluonCV reads ``~/.mxnet/datasets/voc``).

    Parameters
    ----------
    root : str
        The folder that gets ``VOC2007``, ``VOC2012``.
    splits : sequence of (year, split name, image count)
    size : (width, height)
    seed : int
    max_objects : int
        Objects per image: 1 to this many, from :data:`VOC_SHAPES`, not overlapping (fewer when one
        does not fit beside the others).

    Returns
    -------
    dict
        ``(year, split) -> [(image id, [(class, (xmin, ymin, xmax, ymax)), ...]), ...]``,
        the boxes as GluonCV's ``VOCDetection`` reads them (0-based first and last pixel).
    """
    rng = np.random.RandomState(seed)
    width, height = size
    written = {}
    serial = 0
    for year, split, count in splits:
        folder = os.path.join(root, 'VOC%d' % year)
        for sub in ('ImageSets/Main', 'Annotations', 'JPEGImages'):
            os.makedirs(os.path.join(folder, sub), exist_ok=True)
        items = []
        for _ in range(count):
            serial += 1
            image_id = '%d_%06d' % (year, serial)
            img = _background(rng, height, width)
            objects = []
            for _ in range(rng.randint(1, max_objects + 1)):
                name, shape, colour = VOC_SHAPES[rng.randint(len(VOC_SHAPES))]
                w = rng.randint(width // 4, width // 2 + 1)
                h = rng.randint(height // 4, height // 2 + 1)
                for _ in range(20):  # objects do not overlap: every labelled object is seen whole
                    x0, y0 = rng.randint(0, width - w + 1), rng.randint(0, height - h + 1)
                    if all(x0 > b[2] or x0 + w <= b[0] or y0 > b[3] or y0 + h <= b[1] for _, b in objects):
                        _draw_object(img, shape, colour, (x0, y0, x0 + w, y0 + h))
                        objects.append((name, (x0, y0, x0 + w - 1, y0 + h - 1)))
                        break
            cv2.imwrite(os.path.join(folder, 'JPEGImages', image_id + '.jpg'), img)
            with open(os.path.join(folder, 'Annotations', image_id + '.xml'), 'w') as f:
                f.write(_voc_xml(image_id, width, height, objects))
            items.append((image_id, objects))
        with open(os.path.join(folder, 'ImageSets', 'Main', split + '.txt'), 'w') as f:
            f.write(''.join(image_id + '\n' for image_id, _ in items))
        written[(year, split)] = items
    return written


def _person(rng, width, height):
    """17 keypoints (x, y) of a drawn person in an image of this size, and its box (x, y, w, h)."""
    h = rng.uniform(0.55, 0.9) * height
    w = h * rng.uniform(0.45, 0.65)
    x0 = rng.uniform(0, width - w)
    y0 = rng.uniform(0, height - h)
    joints = _FIGURE + rng.uniform(-0.04, 0.04, size=_FIGURE.shape)
    points = np.stack([x0 + joints[:, 0] * w, y0 + joints[:, 1] * h], axis=1)
    xs, ys = points[:, 0], points[:, 1]
    pad = 0.05 * h
    bx0, by0 = max(0.0, xs.min() - pad), max(0.0, ys.min() - pad)
    bx1, by1 = min(width - 1.0, xs.max() + pad), min(height - 1.0, ys.max() + pad)
    return points, (bx0, by0, bx1 - bx0, by1 - by0)


def write_coco_keypoints(root, splits=(('train2017', 4), ('val2017', 4)), size=(96, 96), seed=0):
    """Write a drawn COCO-keypoints dataset under ``root`` (``--data-dir`` of GluonCV's pose scripts).

    One person per image, all 17 keypoints visible.

    Parameters
    ----------
    root : str
    splits : sequence of (split, image count)
        Each gets ``annotations/person_keypoints_<split>.json`` and ``<split>/<id>.jpg``.
    size : (width, height)
    seed : int

    Returns
    -------
    dict
        ``split -> [(image id, keypoints (17, 2) in pixels), ...]``.
    """
    rng = np.random.RandomState(seed)
    width, height = size
    os.makedirs(os.path.join(root, 'annotations'), exist_ok=True)
    written = {}
    serial = 0
    for split, count in splits:
        os.makedirs(os.path.join(root, split), exist_ok=True)
        images, annotations, items = [], [], []
        for _ in range(count):
            serial += 1
            img = _background(rng, height, width)
            points, box = _person(rng, width, height)
            for a, b in _LIMBS:
                cv2.line(img, tuple(int(round(v)) for v in points[a]), tuple(int(round(v)) for v in points[b]),
                         (90, 90, 90), max(1, width // 64))
            radius = max(2, width // 40)
            for j, (x, y) in enumerate(points):
                cv2.circle(img, (int(round(x)), int(round(y))), radius, _COLOURS[_GROUP[j]], -1)
            file_name = '%012d.jpg' % serial
            cv2.imwrite(os.path.join(root, split, file_name), img)
            images.append({'id': serial, 'file_name': file_name, 'width': width, 'height': height,
                           'coco_url': 'http://images.cocodataset.org/%s/%s' % (split, file_name)})
            keypoints = []
            for x, y in points:
                keypoints += [round(float(x), 2), round(float(y), 2), 2]
            annotations.append({'id': serial, 'image_id': serial, 'category_id': 1, 'iscrowd': 0,
                                'bbox': [round(float(v), 2) for v in box], 'area': round(float(box[2] * box[3]), 2),
                                'num_keypoints': 17, 'keypoints': keypoints, 'segmentation': []})
            items.append((serial, points))
        categories = [{'id': 1, 'name': 'person', 'supercategory': 'person',
                       'keypoints': ['nose', 'left_eye', 'right_eye', 'left_ear', 'right_ear', 'left_shoulder',
                                     'right_shoulder', 'left_elbow', 'right_elbow', 'left_wrist', 'right_wrist',
                                     'left_hip', 'right_hip', 'left_knee', 'right_knee', 'left_ankle',
                                     'right_ankle'],
                       'skeleton': [[a + 1, b + 1] for a, b in _LIMBS]}]
        with open(os.path.join(root, 'annotations', 'person_keypoints_%s.json' % split), 'w') as f:
            json.dump({'info': {'description': 'drawn stick figures'}, 'licenses': [], 'images': images,
                       'annotations': annotations, 'categories': categories}, f)
        written[split] = items
    return written
