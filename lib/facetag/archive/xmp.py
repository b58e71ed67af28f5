"""Face tags as XMP, where photo tools read them: Lightroom Classic, digiKam, darktable, Immich, PhotoPrism.

Each named face becomes a Metadata Working Group face region (``mwg-rs:Regions``:
``AppliedToDimensions`` and one ``RegionList`` item with ``Area`` as a
normalised centre x, y and w, h, ``Type`` Face and ``Name``), and each name a
keyword in ``dc:subject`` and, under a ``People|`` root, in
``lr:hierarchicalSubject``, as Lightroom and digiKam write them. Regions are
relative to the photo as displayed, after its EXIF orientation (the MWG rule),
which is how the store's boxes and sizes are measured.

An existing sidecar is merged, never replaced: facetag marks its own regions
(``mwg-rs:Extensions/facetag:FaceID``) and replaces only those, with the
keywords their names gave; other tools' regions and keywords stay. A sidecar
whose content would not change is not rewritten.

The XMP comes from Exempi (the Adobe XMP Toolkit) through python-xmp-toolkit:
it writes ``RegionList``, ``dc:subject`` and ``lr:hierarchicalSubject`` as
the unordered arrays (``rdf:Bag``) that the standards and those tools use.
"""

import os
from dataclasses import dataclass

from facetag.errors import FaceTagError
from facetag.io.files import is_remote, write_atomically

NS_MWG_RS = "http://www.metadataworkinggroup.com/schemas/regions/"
NS_AREA = "http://ns.adobe.com/xmp/sType/Area#"
NS_DIM = "http://ns.adobe.com/xap/1.0/sType/Dimensions#"
NS_DC = "http://purl.org/dc/elements/1.1/"
NS_LR = "http://ns.adobe.com/lightroom/1.0/"
NS_FACETAG = "http://ns.facetag.invalid/xmp/1.0/"  # .invalid: a name, never a web address

PEOPLE_ROOT = "People"
SIDECAR_SUFFIX = ".xmp"
EMBEDDABLE = (".jpg", ".jpeg", ".jpe", ".tif", ".tiff")

REGIONS = "Regions/mwg-rs:RegionList"
BAG = {"prop_array_is_unordered": True}


@dataclass
class Region:
    name: str  # None for an unknown face written without a name
    x: float  # centre, as a fraction of the displayed width
    y: float
    w: float
    h: float
    face_id: str


def regions_of(photo, unknown_regions=False):
    """The MWG regions for a :class:`facetag.archive.results.TaggedPhoto`: its named faces (and unknown ones if asked)."""
    regions = []
    for face in photo.faces:
        if not face.known and not unknown_regions:
            continue
        left, top, right, bottom = face.box
        regions.append(Region(face.identity if face.known else None, (left + right) / 2 / photo.width,
                              (top + bottom) / 2 / photo.height, (right - left) / photo.width,
                              (bottom - top) / photo.height, face.face_id))
    return regions


def _libxmp():
    try:
        import libxmp
        from libxmp import XMPMeta

        XMPMeta.register_namespace(NS_MWG_RS, "mwg-rs")
        XMPMeta.register_namespace(NS_AREA, "stArea")
        XMPMeta.register_namespace(NS_DIM, "stDim")
        XMPMeta.register_namespace(NS_LR, "lr")
        XMPMeta.register_namespace(NS_FACETAG, "facetag")
    except Exception as e:  # libxmp raises ExempiLoadError (not an ImportError) when the C library is missing
        raise FaceTagError("writing XMP needs the Exempi library: install it with 'apt-get install libexempi8' "
                           f"(Debian, Ubuntu) or 'brew install exempi' (macOS); {type(e).__name__}: {e}") from e
    return libxmp


def _region_items(meta):
    """``[(path, facetag face id or None, name or None)]`` of the RegionList items, in order."""
    items = []
    if not meta.does_property_exist(NS_MWG_RS, REGIONS):
        return items
    for i in range(1, meta.count_array_items(NS_MWG_RS, REGIONS) + 1):
        path = f"{REGIONS}[{i}]"
        ours = _get(meta, NS_MWG_RS, f"{path}/mwg-rs:Extensions/facetag:FaceID")
        items.append((path, ours, _get(meta, NS_MWG_RS, f"{path}/mwg-rs:Name")))
    return items


def _get(meta, ns, path):
    return meta.get_property(ns, path) if meta.does_property_exist(ns, path) else None


def _array(meta, ns, name):
    if not meta.does_property_exist(ns, name):
        return []
    return [meta.get_array_item(ns, name, i) for i in range(1, meta.count_array_items(ns, name) + 1)]


def merge_faces(meta, width, height, regions):
    """Put facetag's ``regions`` into the ``XMPMeta``, replacing its earlier ones and their keywords."""
    items = _region_items(meta)
    old_names = {name for _, ours, name in items if ours and name}
    others_names = {name for _, ours, name in items if not ours and name}
    for path, ours, _ in reversed(items):  # from the end: deleting an item renumbers the ones after it
        if ours:
            meta.delete_property(NS_MWG_RS, path)
    new_names = {r.name for r in regions if r.name}
    for name in sorted(old_names - new_names - others_names):
        _remove_item(meta, NS_DC, "subject", name)
        _remove_item(meta, NS_LR, "hierarchicalSubject", f"{PEOPLE_ROOT}|{name}")
    if not regions:
        if meta.does_property_exist(NS_MWG_RS, REGIONS) and not meta.count_array_items(NS_MWG_RS, REGIONS):
            meta.delete_property(NS_MWG_RS, "Regions")  # only facetag's regions were there
        return
    meta.set_property(NS_MWG_RS, "Regions/mwg-rs:AppliedToDimensions/stDim:w", str(width))
    meta.set_property(NS_MWG_RS, "Regions/mwg-rs:AppliedToDimensions/stDim:h", str(height))
    meta.set_property(NS_MWG_RS, "Regions/mwg-rs:AppliedToDimensions/stDim:unit", "pixel")
    for region in regions:
        meta.append_array_item(NS_MWG_RS, REGIONS, None, BAG, prop_value_is_struct=True)
        path = f"{REGIONS}[{meta.count_array_items(NS_MWG_RS, REGIONS)}]"
        for key, value in (("x", region.x), ("y", region.y), ("w", region.w), ("h", region.h)):
            meta.set_property(NS_MWG_RS, f"{path}/mwg-rs:Area/stArea:{key}", f"{value:.6f}")
        meta.set_property(NS_MWG_RS, f"{path}/mwg-rs:Area/stArea:unit", "normalized")
        meta.set_property(NS_MWG_RS, f"{path}/mwg-rs:Type", "Face")
        if region.name:
            meta.set_property(NS_MWG_RS, f"{path}/mwg-rs:Name", region.name)
        meta.set_property(NS_MWG_RS, f"{path}/mwg-rs:Extensions/facetag:FaceID", region.face_id)
    for name in sorted(new_names):
        _add_item(meta, NS_DC, "subject", name)
        _add_item(meta, NS_LR, "hierarchicalSubject", f"{PEOPLE_ROOT}|{name}")


def _add_item(meta, ns, array, value):
    if value not in _array(meta, ns, array):
        meta.append_array_item(ns, array, value, BAG)


def _remove_item(meta, ns, array, value):
    values = _array(meta, ns, array)
    for i in reversed([i for i, v in enumerate(values, 1) if v == value]):
        meta.delete_property(ns, f"{array}[{i}]")
    if values and all(v == value for v in values):
        meta.delete_property(ns, array)


def sidecar_path(photo_path, out_dir=None):
    """``photo.jpg.xmp`` beside the photo, or under ``out_dir`` mirroring the photo's full path."""
    if out_dir is None:
        if is_remote(photo_path):
            raise FaceTagError(f"{photo_path} is not on this machine: write its sidecar to a local --out DIR")
        return photo_path + SIDECAR_SUFFIX
    mirrored = photo_path.replace("://", "/", 1).lstrip("/")
    return os.path.join(out_dir, mirrored + SIDECAR_SUFFIX)


def write_sidecar(path, width, height, regions):
    """Merge ``regions`` into the sidecar at ``path``; returns 'written', 'unchanged' or 'skipped'.

    'skipped': no sidecar exists and there is nothing to write in one.
    """
    libxmp = _libxmp()
    meta = libxmp.XMPMeta()
    before = None
    if os.path.exists(path):
        try:
            with open(path, encoding="utf-8") as f:
                meta.parse_from_str(f.read())
        except (OSError, UnicodeDecodeError, libxmp.XMPError) as e:
            raise FaceTagError(f"cannot read the XMP sidecar {path}: {e}; fix or move it, then run again") from e
        before = _content(meta)
    elif not regions:
        return "skipped"
    merge_faces(meta, width, height, regions)
    if _content(meta) == before:
        return "unchanged"
    after = _serialize(meta)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    write_atomically(path, after)
    return "written"


def _serialize(meta):
    return meta.serialize_to_unicode(omit_packet_wrapper=True)


def _content(meta):
    """The properties and values, whatever order a serializer writes a struct's fields in."""
    from libxmp import XMPIterator

    # A fresh iterator each time: iterating the XMPMeta itself reuses one, empty after the first pass.
    return sorted((ns, path, value) for ns, path, value, _ in XMPIterator(meta))


def embed(photo_path, width, height, regions):
    """Merge ``regions`` into the XMP inside a JPEG or TIFF file; returns 'written' or 'unchanged'."""
    libxmp = _libxmp()
    if not photo_path.lower().endswith(EMBEDDABLE):
        raise FaceTagError(f"{photo_path}: --embed writes only into JPEG and TIFF files; use a sidecar for it")
    files = libxmp.files.XMPFiles()
    try:
        files.open_file(photo_path, open_forupdate=True)
    except (libxmp.XMPError, IOError) as e:
        raise FaceTagError(f"cannot open {photo_path} to embed XMP: {e}") from e
    try:
        meta = files.get_xmp() or libxmp.XMPMeta()
        before = _content(meta)
        merge_faces(meta, width, height, regions)
        if _content(meta) == before:
            return "unchanged"
        if not files.can_put_xmp(meta):
            raise FaceTagError(f"{photo_path}: Exempi cannot write XMP into this file; use a sidecar for it")
        files.put_xmp(meta)
        return "written"
    finally:
        files.close_file()


def write_xmp(results, out_dir=None, embed_in_photo=False, unknown_regions=False, on_error=None):
    """XMP for every photo of :class:`facetag.archive.results.Results` with faces; returns a summary dict.

    ``on_error(path, message)`` is told of each photo whose XMP could not be
    written (default: raise); the others are still written.
    """
    counts = {"photos": 0, "written": 0, "unchanged": 0, "skipped": 0, "failed": 0, "regions": 0}
    for photo in results.photos:
        if photo.outcome not in ("faces", "no_face") or not photo.width or not photo.height:
            continue
        regions = regions_of(photo, unknown_regions)
        try:
            if embed_in_photo:
                embeddable = photo.path.lower().endswith(EMBEDDABLE)
                outcome = embed(photo.path, photo.width, photo.height, regions) if regions or embeddable else "skipped"
            else:
                outcome = write_sidecar(sidecar_path(photo.path, out_dir), photo.width, photo.height, regions)
        except (FaceTagError, OSError) as e:
            if on_error is None:
                raise
            on_error(photo.path, str(e))
            outcome = "failed"
        counts["photos"] += 1
        counts[outcome] += 1
        if outcome in ("written", "unchanged"):
            counts["regions"] += len(regions)
    return counts
