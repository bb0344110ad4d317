"""``eval.py --predict``: the top-k classes of image files, folders and globs, as a table, JSON and pictures.

:func:`predict_images` reads the images in batches (an image that cannot be
read is named and skipped), runs :func:`gluon_asymmnet.predict` on each
batch, through an inference backend when one is chosen, and prints each
image's classes as it goes; :func:`image_paths` expands the paths given,
:func:`save_visualization` draws the classes on a picture.
"""
import glob
import os
import sys

from ..data import DataError
from ..data.sources import image_files
from ..files import atomic_write, write_failure_reason
from ..inference import INT8_BACKENDS, build_predictor
from ..prediction import ImageError, input_batch, predict, read_image
from .errors import EvalError

__all__ = ['image_paths', 'format_prediction', 'save_visualization', 'predict_images', 'predictions_payload']

# Long side of the pictures --save-vis writes.
_VIS_SIDE = 640
# Pixels decoded at once at most (beyond one image): 150 MB of RGB.
_BATCH_PIXELS = 50_000_000


def image_paths(specs):
    """The image files that ``specs`` name, in order, each once, and the files left out.

    A file is taken as it is (whatever its name: it is read to see), a folder
    gives the images under it as ``eval.py`` finds them in a class folder
    (:func:`gluon_asymmnet.data.sources.image_files`: subfolders walked,
    hidden entries skipped, other formats named), a glob its matches.

    Returns
    -------
    (list of str, list of (str, str))
        The paths, and ``(path, reason)`` of each file of a folder left out.

    Raises
    ------
    EvalError
        A path that does not exist or a glob that matches nothing, naming it.
    """
    paths, skipped = [], []
    for spec in specs:
        expanded = os.path.expanduser(spec)
        matches = [expanded] if os.path.exists(expanded) else sorted(glob.glob(expanded))
        if not matches:
            raise EvalError('--predict %s: %s' % (spec, 'matches no file' if glob.has_magic(expanded)
                                                  else 'no such file or folder'))
        for match in matches:
            try:
                paths.extend(image_files(match, skipped) if os.path.isdir(match) else [match])
            except DataError as err:
                raise EvalError('--predict %s: %s' % (spec, err))
    return list(dict.fromkeys(paths)), skipped


def format_prediction(prediction, show_index=True):
    """One image's classes as lines: its path, then ``probability %  name  [index]`` per class."""
    lines = [str(prediction.image)]
    for index, name, prob in zip(prediction.indices, prediction.names, prediction.probabilities):
        lines.append('  %6.2f %%  %s%s' % (100 * prob, name, '  [%d]' % index if show_index and name != str(index)
                                           else ''))
    return '\n'.join(lines)


def _font(size):
    from PIL import ImageFont
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):  # Pillow without FreeType: its small bitmap font
        return ImageFont.load_default()


def save_visualization(path, image, prediction):
    """Write ``image`` (RGB) to ``path`` as PNG, scaled to 640 px on its long side, its classes listed beneath.

    Written atomically: the file appears complete or not at all.
    """
    from PIL import Image, ImageDraw
    pic = Image.fromarray(image)
    scale = _VIS_SIDE / max(pic.size)
    pic = pic.resize((max(1, round(pic.width * scale)), max(1, round(pic.height * scale))),
                     Image.NEAREST if scale > 1 else Image.LANCZOS)
    font, line = _font(18), 26
    lines = ['%5.1f%%  %s' % (100 * p, n) for n, p in zip(prediction.names, prediction.probabilities)]
    width = max([pic.width, 360] + [int(font.getlength(text)) + 24 for text in lines])
    canvas = Image.new('RGB', (width, pic.height + line * len(lines) + 16), 'white')
    canvas.paste(pic, ((width - pic.width) // 2, 0))
    draw = ImageDraw.Draw(canvas)
    for k, text in enumerate(lines):
        draw.text((12, pic.height + 8 + k * line), text, fill=(0, 0, 0) if k else (180, 0, 0), font=font)
    atomic_write(path, lambda tmp: canvas.save(tmp, format='PNG'))


def _vis_name(path, used):
    stem = os.path.splitext(os.path.basename(path))[0] or 'image'
    name, k = stem + '.png', 1
    while name in used:
        k += 1
        name = '%s-%d.png' % (stem, k)
    used.add(name)
    return name


def _read_batches(paths, batch_size, skipped, err):
    """Lists of ``(path, RGB image)``: ``batch_size`` images, fewer when they hold many pixels (phone photos are
    36 MB each decoded); an image that cannot be read is added to ``skipped`` and printed to ``err``."""
    batch, pixels = [], 0
    for path in paths:
        try:
            image = read_image(path)
        except ImageError as e:
            skipped.append((path, str(e)))
            print('skipped: %s' % e, file=err, flush=True)
            continue
        batch.append((path, image))
        pixels += image.shape[0] * image.shape[1]
        if len(batch) == batch_size or pixels >= _BATCH_PIXELS:
            yield batch
            batch, pixels = [], 0
    if batch:
        yield batch


def predict_images(net, specs, topk=5, class_names=None, preprocess=None, batch_size=32, backend=None,
                   backend_options=None, save_vis=None, out=None, err=None):
    """``eval.py --predict``: read, classify and report the images that ``specs`` name.

    Parameters
    ----------
    net : HybridBlock
    specs : sequence of str
        Files, folders and globs (:func:`image_paths`).
    topk, class_names, preprocess, batch_size
        As :func:`gluon_asymmnet.predict`.
    backend : str, optional
        Run through this inference backend (:func:`gluon_asymmnet.inference.build_predictor`,
        built for ``batch_size`` or fewer images; INT8 ones calibrated on the
        first batch of images); default: ``net`` itself, as ``eval.py``
        evaluates.
    backend_options : dict, optional
        More :func:`~gluon_asymmnet.inference.build_predictor` arguments.
    save_vis : str, optional
        Folder for one PNG per image with its classes drawn on it.
    out, err : file, optional
        Where the table and the skipped images are printed (default: standard output, standard error).

    Returns
    -------
    (list of Prediction, list of (str, str), list of str)
        The predictions, the images skipped with the reason, the pictures
        written.

    Raises
    ------
    EvalError
        No path found, or none of the images could be read.
    """
    out, err = out or sys.stdout, err or sys.stderr
    paths, skipped = image_paths(specs)
    for path, why in skipped:
        print('skipped: %s %s' % (path, why), file=err, flush=True)
    skipped = [(path, '%s %s' % (path, why)) for path, why in skipped]
    if not paths:
        raise EvalError('--predict %s: no image there%s' % (' '.join(specs), ' (each file named above)' if skipped
                                                                else ''))
    found, written, used, runner = [], [], set(), net
    for batch in _read_batches(paths, batch_size, skipped, err):
        names, images = zip(*batch)
        if runner is net and backend is not None:
            calib = input_batch(images, preprocess) if backend in INT8_BACKENDS else None
            runner = build_predictor(backend, net, batch_size=min(batch_size, len(paths)),
                                     input_size=preprocess.input_size, calib=calib, **(backend_options or {}))
        try:
            predictions = predict(runner, images, topk, class_names, preprocess, batch_size)
        except ValueError as e:
            raise EvalError(str(e))
        for path, image, prediction in zip(names, images, predictions):
            prediction = prediction._replace(image=path)
            found.append(prediction)
            print(format_prediction(prediction), file=out, flush=True)
            if save_vis is not None:
                target = os.path.join(save_vis, _vis_name(path, used))
                try:
                    save_visualization(target, image, prediction)
                except OSError as e:
                    raise EvalError('--save-vis %s: %s' % (target, write_failure_reason(e, save_vis)))
                written.append(target)
    if not found:
        raise EvalError('none of the %d image%s could be read (%s)' % (
            len(paths), '' if len(paths) == 1 else 's', skipped[0][1] if len(skipped) == 1 else 'each named above'))
    return found, skipped, written


def predictions_payload(predictions, skipped):
    """The JSON form of :func:`predict_images`' result (without the logits)."""
    return {'predictions': [{'image': p.image, 'top': [
        {'index': i, 'name': n, 'probability': pr} for i, n, pr in zip(p.indices, p.names, p.probabilities)]}
        for p in predictions], 'skipped': [{'image': path, 'error': why} for path, why in skipped]}
