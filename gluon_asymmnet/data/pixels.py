"""The pixel limit: an image whose header declares more pixels than the limit is never decoded.

A 30000 x 30000 PNG of 875 KB decodes to 2.7 GB (a decompression bomb). As
PIL's ``Image.MAX_IMAGE_PIXELS`` does, the size is read from the file's header
(a few bytes, no decoding) and compared with the limit first. Every decoding
path calls :func:`pixel_problem` or :func:`check_pixels`: training and
evaluation batches, the packer, and single photos.

The limit is one per process (:func:`set_max_image_pixels`, the command
lines' ``--max-image-pixels``); DataLoader and packer workers, forked after
it is set, inherit it.
"""
import re
import struct

from .errors import DataError

__all__ = ['DEFAULT_MAX_IMAGE_PIXELS', 'ImageTooLarge', 'image_size', 'pixel_problem', 'check_pixels',
           'max_image_pixels', 'set_max_image_pixels']

# PIL's default: 1024 * 1024 * 1024 // 4 // 3 pixels, 256 MiB as 24-bit RGB (a 9459 x 9459 photo).
DEFAULT_MAX_IMAGE_PIXELS = 89478485
_limit = DEFAULT_MAX_IMAGE_PIXELS


class ImageTooLarge(DataError):
    """An image whose header declares more pixels than the limit."""


def max_image_pixels():
    """The pixel limit of this process."""
    return _limit


def set_max_image_pixels(limit):
    """Set this process's pixel limit (``None``: the default); returns the previous one."""
    global _limit
    previous = _limit
    value = DEFAULT_MAX_IMAGE_PIXELS if limit is None else limit
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError('the pixel limit must be a whole number >= 1, got %r' % (limit,))
    _limit = value
    return previous


def _jpeg(b):
    i, n = 2, len(b)
    while i + 9 < n:
        if b[i] != 0xFF:
            return None
        marker = b[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        length = (b[i + 2] << 8) | b[i + 3]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # a start-of-frame segment
            height, width = struct.unpack('>HH', b[i + 5:i + 9])
            return width, height
        i += 2 + length
    return None


def _bmp(b):
    if len(b) < 26:
        return None
    if struct.unpack('<I', b[14:18])[0] == 12:
        return struct.unpack('<HH', b[18:22])
    width, height = struct.unpack('<ii', b[18:26])
    return abs(width), abs(height)


def _webp(b):
    kind = b[12:16]
    if kind == b'VP8 ' and len(b) >= 30:
        width, height = struct.unpack('<HH', b[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if kind == b'VP8L' and len(b) >= 25:
        bits = struct.unpack('<I', b[21:25])[0]
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if kind == b'VP8X' and len(b) >= 30:
        return int.from_bytes(b[24:27], 'little') + 1, int.from_bytes(b[27:30], 'little') + 1
    return None


def _tiff(b):
    order = '<' if b[:2] == b'II' else '>'
    try:
        (ifd,) = struct.unpack(order + 'I', b[4:8])
        (count,) = struct.unpack(order + 'H', b[ifd:ifd + 2])
        size = {}
        for k in range(count):
            tag, kind, _, value = struct.unpack(order + 'HHI4s', b[ifd + 2 + 12 * k:ifd + 14 + 12 * k])
            if tag in (256, 257):
                size[tag] = struct.unpack(order + ('H' if kind == 3 else 'I'), value[:2 if kind == 3 else 4])[0]
        return size[256], size[257]
    except (struct.error, KeyError):
        return None


_NUMBERS = re.compile(rb'(?:\s|#[^\n]*\n)*(\d+)(?:\s|#[^\n]*\n)+(\d+)')
_RADIANCE = re.compile(rb'\n[-+]Y (\d+) [-+]X (\d+)')


def _pnm(b):
    found = _NUMBERS.match(b, 2)
    return (int(found.group(1)), int(found.group(2))) if found else None


def _radiance(b):
    found = _RADIANCE.search(b[:4096])
    return (int(found.group(2)), int(found.group(1))) if found else None


def _jp2(b):
    at = b[:1024].find(b'ihdr')
    if at < 0 or len(b) < at + 12:
        return None
    height, width = struct.unpack('>II', b[at + 4:at + 12])
    return width, height


def image_size(payload):
    """``(width, height)`` declared by an encoded image's header, or None when it is not read.

    Reads the formats OpenCV decodes (JPEG, PNG, BMP, WebP, TIFF, GIF, PNM,
    PFM, Sun raster, Radiance HDR, JPEG 2000) from their first bytes only.
    """
    b = payload if isinstance(payload, bytes) else bytes(payload)
    head = b[:4]
    if head[:2] == b'\xff\xd8':
        return _jpeg(b)
    if head == b'\x89PNG' and len(b) >= 24:
        return struct.unpack('>II', b[16:24])
    if head[:2] == b'BM':
        return _bmp(b)
    if head == b'RIFF' and b[8:12] == b'WEBP':
        return _webp(b)
    if head in (b'II*\0', b'MM\0*'):
        return _tiff(b)
    if head[:3] == b'GIF' and len(b) >= 10:
        return struct.unpack('<HH', b[6:10])
    if head[:1] == b'P' and head[1:2] in b'123456fF':
        return _pnm(b)
    if head == b'\x59\xa6\x6a\x95' and len(b) >= 12:
        return struct.unpack('>II', b[4:12])
    if head[:2] == b'#?':
        return _radiance(b)
    if b[4:8] == b'jP  ' or head == b'\xff\x4f\xff\x51':
        return _jp2(b) if b[4:8] == b'jP  ' else (struct.unpack('>II', b[8:16]) if len(b) >= 16 else None)
    return None


def pixel_problem(payload, limit=None):
    """Why ``payload`` must not be decoded (its pixel count is above the limit), or None.

    Parameters
    ----------
    payload : bytes
        The encoded image.
    limit : int, optional
        Default: this process's limit (:func:`max_image_pixels`).
    """
    size = image_size(payload) if payload else None
    if size is None:
        return None
    limit = _limit if limit is None else limit
    width, height = size
    if width * height <= limit:
        return None
    return ('has %d x %d = %d pixels, above the limit of %d (a decompression bomb?); raise it with '
            '--max-image-pixels (set_max_image_pixels) if the image is genuine' % (width, height, width * height, limit))


def check_pixels(payload, name='the image', limit=None):
    """Raise :class:`ImageTooLarge` ("``name`` has W x H = N pixels, above the limit ...") before a decode.

    Returns ``(width, height)`` when the header was read, else None (the decoder then judges the file).
    """
    problem = pixel_problem(payload, limit)
    if problem:
        raise ImageTooLarge('%s %s' % (name, problem))
    return image_size(payload) if payload else None
