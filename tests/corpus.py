"""A corpus of the unusual and malformed files a real photo archive holds, with each one's expected outcome.

    python tests/corpus.py FACE_PHOTO OUT_DIR     # writes the corpus, prints kind -> expected outcome

:func:`write_corpus` writes one file (or link, pipe, socket, folder) per kind
into a folder, all made here with Pillow, pillow-heif, NumPy and the
standard library from one photo of a face, and returns :class:`Expected`
per path: ``faces``, ``no_face``, ``failed`` (with a word the reason must
hold) or ``None`` for files facetag skips without a word. Files are kept
small (the face photo is shrunk to 480 px) so the corpus is quick to tag.
"""

import io
import os
import socket
import struct
import sys
import zlib
from dataclasses import dataclass

import numpy as np
import pillow_heif
from PIL import Image

pillow_heif.register_heif_opener()

#: The corpus test reads at most this many bytes a file (``--max_file_mb``), so a 6 MB file tests the limit.
CORPUS_MAX_FILE_MB = 5


@dataclass(frozen=True)
class Expected:
    outcome: str | None  # faces, no_face, failed; None: skipped without a word
    reason: str = ""  # a phrase the reason must contain


FACES, SKIPPED, FAILED = Expected("faces"), Expected(None), "failed"

# EXIF orientation -> how the stored pixels are turned so that the orientation shows them upright.
_STORED = {
    1: [], 2: [Image.Transpose.FLIP_LEFT_RIGHT], 3: [Image.Transpose.ROTATE_180],
    4: [Image.Transpose.FLIP_TOP_BOTTOM], 5: [Image.Transpose.TRANSPOSE], 6: [Image.Transpose.ROTATE_90],
    7: [Image.Transpose.TRANSVERSE], 8: [Image.Transpose.ROTATE_270],
}


def _bytes(image, fmt, **kw):
    buf = io.BytesIO()
    image.save(buf, fmt, **kw)
    return buf.getvalue()


def _png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_claiming(width, height, rows=None):
    """A greyscale PNG whose header says ``width`` x ``height``; ``rows`` of zeros actually compressed in (a bomb)."""
    body = b""
    if rows:
        packer = zlib.compressobj(9)
        line = bytes(width + 1)  # filter byte + pixels
        body = b"".join(packer.compress(line) for _ in range(rows)) + packer.flush()
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + _png_chunk(b"IDAT", body or zlib.compress(b"\0" * 64)) + _png_chunk(b"IEND", b""))


def dng(rgb, orientation=1):
    """A minimal uncompressed DNG (Bayer RGGB, 16-bit) of an RGB image, the way a camera stores its sensor data."""
    h, w = (s - s % 2 for s in rgb.shape[:2])
    rgb = rgb[:h, :w].astype(np.uint16) * 257
    cfa = np.empty((h, w), "<u2")
    cfa[0::2, 0::2], cfa[0::2, 1::2] = rgb[0::2, 0::2, 0], rgb[0::2, 1::2, 1]
    cfa[1::2, 0::2], cfa[1::2, 1::2] = rgb[1::2, 0::2, 1], rgb[1::2, 1::2, 2]
    pixels = cfa.tobytes()
    short, long_, byte, ascii_, srational, rational = 3, 4, 1, 2, 10, 5
    tags = {
        254: (long_, [0]), 256: (long_, [w]), 257: (long_, [h]), 258: (short, [16]), 259: (short, [1]),
        262: (short, [32803]), 271: (ascii_, b"facetag\0"), 272: (ascii_, b"corpus\0"), 273: (long_, [0]),
        274: (short, [orientation]), 277: (short, [1]), 278: (long_, [h]), 279: (long_, [len(pixels)]),
        284: (short, [1]), 33421: (short, [2, 2]), 33422: (byte, [0, 1, 1, 2]), 50706: (byte, [1, 4, 0, 0]),
        50708: (ascii_, b"facetag corpus\0"), 50717: (long_, [65535]),
        50721: (srational, [1, 1, 0, 1, 0, 1, 0, 1, 1, 1, 0, 1, 0, 1, 0, 1, 1, 1]),  # ColorMatrix1: identity
        50728: (rational, [1, 1, 1, 1, 1, 1]),  # AsShotNeutral
    }
    fmt = {byte: "B", ascii_: "B", short: "H", long_: "I", rational: "I", srational: "i"}
    ifd_at = 8
    extra_at = ifd_at + 2 + 12 * len(tags) + 4
    entries, extra = [], b""
    data_at = None
    for tag in sorted(tags):
        kind, values = tags[tag]
        values = list(values)
        count = len(values) // 2 if kind in (rational, srational) else len(values)
        raw = struct.pack(f"<{len(values)}{fmt[kind]}", *values)
        if len(raw) <= 4:
            entries.append(struct.pack("<HHI", tag, kind, count) + raw.ljust(4, b"\0"))
        else:
            entries.append(struct.pack("<HHII", tag, kind, count, extra_at + len(extra)))
            extra += raw + b"\0" * (len(raw) % 2)
        if tag == 273:
            data_at = len(entries) - 1
    pixel_at = extra_at + len(extra)
    entries[data_at] = struct.pack("<HHII", 273, long_, 1, pixel_at)
    return (b"II*\0" + struct.pack("<I", ifd_at) + struct.pack("<H", len(tags)) + b"".join(entries)
            + struct.pack("<I", 0) + extra + pixels)


def with_preview(raw_file, preview):
    """A DNG (from :func:`dng`) with a second IFD holding a JPEG preview of a PIL image, as cameras embed one."""
    jpeg = _bytes(preview, "JPEG", quality=85)
    out = bytearray(raw_file)
    next_ifd = 8 + 2 + 12 * struct.unpack_from("<H", out, 8)[0]
    ifd_at = len(out) + len(out) % 2
    out += bytes(ifd_at - len(out))
    tags = [(254, 4, 1), (256, 4, preview.width), (257, 4, preview.height), (258, 3, 8), (259, 3, 7), (262, 3, 6),
            (273, 4, None), (277, 3, 3), (279, 4, len(jpeg))]
    jpeg_at = ifd_at + 2 + 12 * len(tags) + 4
    entries = [struct.pack("<HHI", tag, kind, 1) + struct.pack("<I" if kind == 4 else "<HH", *(
        [jpeg_at if value is None else value] if kind == 4 else [value, 0])) for tag, kind, value in tags]
    out += struct.pack("<H", len(tags)) + b"".join(entries) + struct.pack("<I", 0) + jpeg
    struct.pack_into("<I", out, next_ifd, ifd_at)
    return bytes(out)


def write_corpus(folder, face_photo):
    """Write every kind into ``folder``; returns {path: Expected}. ``face_photo``: a photo of one face."""
    os.makedirs(folder, exist_ok=True)
    face = Image.open(face_photo).convert("RGB")
    face.thumbnail((480, 480))
    face_array = np.asarray(face)
    blank = Image.new("RGB", (640, 480), (120, 140, 160))
    expected = {}

    def put(name, data, outcome):
        path = os.path.join(folder, name) if isinstance(name, str) else os.path.join(os.fsencode(folder), name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        expected[path] = outcome
        return path

    def failed(reason):
        return Expected(FAILED, reason)

    jpeg, png = _bytes(face, "JPEG", quality=90), _bytes(face, "PNG")
    webp, heic = _bytes(face, "WEBP", quality=80), _bytes(face, "HEIF", quality=70)

    # Formats and modes that hold the face.
    put("face.jpg", jpeg, FACES)
    put("face.png", png, FACES)
    put("face.webp", webp, FACES)
    put("face.heic", heic, FACES)
    put("face.avif", _bytes(face, "AVIF", quality=70), FACES)
    put("face.bmp", _bytes(face, "BMP"), FACES)
    put("face.dng", dng(face_array), FACES)
    put("face_preview.dng", with_preview(dng(face_array[::4, ::4]), face.resize((face.width * 3, face.height * 3))),
        FACES)
    put("face_cmyk.jpg", _bytes(face.convert("CMYK"), "JPEG", quality=90), FACES)
    grey16 = (np.asarray(face.convert("L"), dtype=np.uint16) * 257).astype(np.uint16)
    put("face_16bit_grey.png", _bytes(Image.fromarray(grey16), "PNG"), FACES)
    palette = face.convert("RGBA")
    palette.putpixel((0, 0), (0, 0, 0, 0))
    put("face_palette_transparent.png", _bytes(palette.convert("P", palette=Image.Palette.ADAPTIVE), "PNG",
                                                transparency=0), FACES)
    put("face_multipage.tiff", _bytes(face, "TIFF", save_all=True, append_images=[blank]), FACES)
    put("face_animated.gif", _bytes(face, "GIF", save_all=True, append_images=[blank], duration=100), FACES)
    exif = Image.Exif()
    exif[0x010F] = "facetag corpus"
    broken = bytearray(exif.tobytes())
    broken[-8:] = b"\xff" * 8  # an IFD offset that points outside the EXIF block
    put("face_broken_exif.jpg", _bytes(face, "JPEG", quality=90, exif=bytes(broken)), FACES)
    for orientation, turns in _STORED.items():
        stored = face
        for turn in turns:
            stored = stored.transpose(turn)
        exif = Image.Exif()
        exif[0x0112] = orientation
        put(f"orientation_{orientation}.jpg", _bytes(stored, "JPEG", quality=90, exif=exif.tobytes()), FACES)
    # Wrong endings, both ways, and names with every kind of character.
    put("png_named.jpg", png, FACES)
    put("jpeg_named.png", jpeg, FACES)
    put("jpeg_named.heic", jpeg, FACES)
    put("name with spaces, commas, 'quotes' and \"double\" quotes.jpg", jpeg, FACES)
    put("new\nline.jpg", jpeg, FACES)
    put("ünïcødé 照片.jpg", jpeg, FACES)
    put(b"latin1 caf\xe9.jpg", jpeg, failed("not UTF-8"))
    put("folder_named.jpg/inside.jpg", jpeg, FACES)
    put("photo.jpg.gz", jpeg, FACES)  # a photo, whatever its ending: never decompressed

    # Images without a face, or too small to hold one.
    put("blank.png", _bytes(blank, "PNG"), Expected("no_face", "no face found"))
    put("one_pixel.png", _bytes(Image.new("RGB", (1, 1)), "PNG"), Expected("no_face", "smaller than the smallest"))
    put("tiny_15x12.jpg", _bytes(face.resize((15, 12)), "JPEG"), Expected("no_face", "smaller than the smallest"))

    # Over a limit.
    put("strip_20000x1.png", _bytes(Image.new("L", (20000, 1)), "PNG"), failed("too narrow to hold a face"))
    put("panorama_3000x100.jpg", _bytes(Image.new("RGB", (3000, 100)), "JPEG"), failed("too narrow"))
    put("claims_30000x30000.png", png_claiming(30000, 30000), failed("over the 100-megapixel limit"))
    put("bomb_12000x12000.png", png_claiming(12000, 12000, rows=12000), failed("over the 100-megapixel limit"))
    with open(os.path.join(folder, "big_6MB.jpg"), "wb") as f:
        f.write(jpeg)
        f.truncate(6_000_000)
    expected[os.path.join(folder, "big_6MB.jpg")] = failed(f"over the {CORPUS_MAX_FILE_MB} MB limit")

    # Damaged files.
    for name, data in (("jpg", jpeg), ("png", png), ("webp", webp), ("heic", heic)):
        for fraction in (0.05, 0.5, 0.9):
            put(f"cut_{int(fraction * 100)}pc.{name}", data[: int(len(data) * fraction)], failed("cut short"))
    damaged = bytearray(png)
    at = damaged.index(b"IDAT") + 40
    damaged[at: at + 32] = bytes(32)
    put("corrupt_crc.png", bytes(damaged), failed("corrupt"))
    put("zero_bytes.jpg", b"", failed("empty"))
    put("all_zero.jpg", bytes(4096), failed("only zero bytes"))
    put("random.jpg", np.random.default_rng(0).integers(0, 256, 8192, dtype=np.uint8).tobytes(),
        failed("not an image"))
    put("saved_page.jpg", b"<!DOCTYPE html><html><body>Not found</body></html>\n", failed("HTML"))
    put("notes.txt", b"shopping list\n", failed("not an image"))

    # Paths that are no regular file.
    def special(name, make, outcome):
        path = os.path.join(folder, name)
        make(path)
        expected[path] = outcome

    special("dangling.jpg", lambda p: os.symlink("no-such-photo.jpg", p), failed("broken symbolic link"))
    special("self_loop.jpg", lambda p: os.symlink("self_loop.jpg", p), failed("loops"))
    special("looping_folder", lambda p: os.symlink(".", p), failed("loops back"))
    special("pipe.jpg", os.mkfifo, failed("named pipe"))
    special("socket.jpg", lambda p: socket.socket(socket.AF_UNIX).bind(p), failed("socket"))

    # Other tools' files: skipped without a word.
    for name in (".DS_Store", "._face.jpg", "Thumbs.db", "desktop.ini", "@eaDir/face.jpg/SYNOPHOTO_THUMB_M.jpg",
                 "face.xmp", ".hidden/face.jpg"):
        put(name, jpeg, SKIPPED)
    return expected


def display(path):
    """A path as facetag's outputs name it (non-UTF-8 bytes as \\xNN)."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


if __name__ == "__main__":
    for path, outcome in write_corpus(sys.argv[2], sys.argv[1]).items():
        print(f"{display(path)!r}: {outcome.outcome} {outcome.reason}")
