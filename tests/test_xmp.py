"""XMP face regions and keywords, read back with ExifTool (Debian's libimage-exiftool-perl, from 'make setup')."""

import hashlib
import json
import os
import shutil
import subprocess

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from facetag.archive.results import results_from_tables
from facetag.archive.xmp import sidecar_path, write_xmp


def need_exiftool():
    if shutil.which("exiftool") is None:
        pytest.skip("needs ExifTool: 'make setup' installs Debian's libimage-exiftool-perl with apt-get")


def exiftool(*args):
    need_exiftool()
    out = subprocess.run(["exiftool", "-j", *args], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def as_list(value):
    return value if isinstance(value, list) else [value]


@pytest.fixture
def archive(tagged_archive, tmp_path):
    """A writable copy of the tagged archive, with results pointing at the copy."""
    folder, _, res, photos, matches = tagged_archive
    copy = str(tmp_path / "archive")
    shutil.copytree(folder, copy)

    def moved(table):
        return table.set_column(table.schema.get_field_index("path"), "path",
                                pc.replace_substring(table.column("path"), folder, copy))
    return copy, moved(photos), moved(matches), res.model_id


def results(archive, **renames):
    folder, photos, matches, model_id = archive
    if renames:
        identities = [renames.get(i, i) for i in matches.column("identity").to_pylist()]
        matches = matches.set_column(matches.schema.get_field_index("identity"), "identity", pa.array(identities))
    return results_from_tables(photos, matches, model_id)


def expected_regions(photo):
    named = [f for f in photo.faces if f.known]
    return [(f.identity, ((f.box[0] + f.box[2]) / 2 / photo.width, (f.box[1] + f.box[3]) / 2 / photo.height,
                          (f.box[2] - f.box[0]) / photo.width, (f.box[3] - f.box[1]) / photo.height)) for f in named]


def regions_read(meta):
    names = as_list(meta.get("RegionName", []))
    areas = zip(*(as_list(meta[f"RegionArea{k}"]) for k in "XYWH")) if names else []
    return sorted(zip(names, areas))


def test_sidecars_hold_the_stores_faces_as_exiftool_reads_them(archive):
    res = results(archive)
    counts = write_xmp(res)
    named = [p for p in res.photos if any(f.known for f in p.faces)]
    assert counts["written"] == len(named) == 5 and counts["skipped"] == 2  # the astronaut is unknown, the sky faceless
    by_name = {}
    for photo in named:
        (meta,) = exiftool(photo.path + ".xmp")
        by_name[os.path.basename(photo.path)] = meta
        got, want = regions_read(meta), sorted(expected_regions(photo))
        assert [g[0] for g in got] == [w[0] for w in want]
        for (_, g), (_, w) in zip(got, want):
            assert g == pytest.approx(w, abs=2e-6)
        assert set(as_list(meta["RegionType"])) == {"Face"}
        assert (meta["RegionAppliedToDimensionsW"], meta["RegionAppliedToDimensionsH"]) == (photo.width, photo.height)
        assert sorted(as_list(meta["Subject"])) == sorted({f.identity for f in photo.faces if f.known})
        assert sorted(as_list(meta["HierarchicalSubject"])) == sorted(f"People|{n}" for n in as_list(meta["Subject"]))
    assert not os.path.exists(os.path.join(archive[0], "astronaut.png.xmp"))
    assert sorted(by_name["two_people.jpg"]["RegionName"]) == ["biden", "obama"]


def test_regions_are_relative_to_the_displayed_photo_of_an_exif_rotated_file(archive):
    write_xmp(results(archive))
    (stored,) = exiftool("-Orientation", "-ImageWidth", "-ImageHeight", os.path.join(archive[0], "rotated.jpg"))
    assert stored["Orientation"] == "Rotate 270 CW" and (stored["ImageWidth"], stored["ImageHeight"]) == (600, 313)
    (rotated,) = exiftool(os.path.join(archive[0], "rotated.jpg.xmp"))
    (upright,) = exiftool(os.path.join(archive[0], "grey.jpg.xmp"))  # the same picture, stored upright
    assert (rotated["RegionAppliedToDimensionsW"], rotated["RegionAppliedToDimensionsH"]) == (313, 600)
    assert regions_read(rotated)[0][1] == pytest.approx(regions_read(upright)[0][1], abs=0.03)


def exiftool_write(*args):
    need_exiftool()
    subprocess.run(["exiftool", "-q", "-overwrite_original", *args], check=True)


def test_existing_sidecars_are_merged_and_reruns_change_nothing(archive):
    sidecar = os.path.join(archive[0], "two_people.jpg.xmp")
    exiftool_write("-o", sidecar, "-RegionInfo={AppliedToDimensions={W=1283,H=2204,Unit=pixel},"
                   "RegionList=[{Area={X=0.5,Y=0.9,W=0.1,H=0.05,Unit=normalized},Name=Jane Doe,Type=Face}]}",
                   "-Subject=holiday", "-Subject=Jane Doe", "-HierarchicalSubject=Places|Rome",
                   "-HierarchicalSubject=People|Jane Doe", os.path.join(archive[0], "sky.png"))
    write_xmp(results(archive))
    (meta,) = exiftool(sidecar)
    assert sorted(meta["RegionName"]) == ["Jane Doe", "biden", "obama"]
    assert sorted(meta["Subject"]) == ["Jane Doe", "biden", "holiday", "obama"]
    assert sorted(meta["HierarchicalSubject"]) == ["People|Jane Doe", "People|biden", "People|obama", "Places|Rome"]

    before = {p: open(p, "rb").read() for p in (sidecar, os.path.join(archive[0], "obama2.jpg.xmp"))}
    mtimes = {p: os.stat(p).st_mtime_ns for p in before}
    counts = write_xmp(results(archive))
    assert counts["written"] == 0 and counts["unchanged"] == 5
    assert {p: open(p, "rb").read() for p in before} == before
    assert {p: os.stat(p).st_mtime_ns for p in before} == mtimes

    # A later run names obama differently: facetag's old regions and keywords go, Jane's stay.
    write_xmp(results(archive, obama="Barack Obama"))
    (meta,) = exiftool(sidecar)
    assert sorted(meta["RegionName"]) == ["Barack Obama", "Jane Doe", "biden"]
    assert sorted(meta["Subject"]) == ["Barack Obama", "Jane Doe", "biden", "holiday"]
    assert sorted(meta["HierarchicalSubject"]) == ["People|Barack Obama", "People|Jane Doe", "People|biden",
                                                   "Places|Rome"]
    # ... and when a face is no longer named at all, its region and keyword go too.
    write_xmp(results(archive, obama="unknown", biden="unknown"))
    (meta,) = exiftool(sidecar)
    assert meta["RegionName"] == "Jane Doe" and sorted(meta["Subject"]) == ["Jane Doe", "holiday"]
    (alone,) = exiftool(os.path.join(archive[0], "obama2.jpg.xmp"))
    assert "RegionName" not in alone and "Subject" not in alone


def test_unknown_faces_get_a_region_without_a_name_only_when_asked(archive):
    res = results(archive)
    write_xmp(res, unknown_regions=True)
    (meta,) = exiftool(os.path.join(archive[0], "astronaut.png.xmp"))
    assert meta["RegionType"] == "Face" and "RegionName" not in meta and "Subject" not in meta
    (face,) = [p for p in res.photos if p.path.endswith("astronaut.png")][0].faces
    assert meta["RegionAreaX"] == pytest.approx((face.box[0] + face.box[2]) / 2 / 512, abs=2e-6)


def test_mirror_folder_for_a_read_only_archive_and_embed_only_when_asked(archive, tmp_path):
    res = results(archive)
    sha = {p.path: hashlib.sha256(open(p.path, "rb").read()).hexdigest() for p in res.photos if p.width}
    os.chmod(archive[0], 0o555)
    try:
        counts = write_xmp(res, out_dir=str(tmp_path / "xmp"))
    finally:
        os.chmod(archive[0], 0o755)
    photo = os.path.join(archive[0], "obama2.jpg")
    mirrored = sidecar_path(photo, str(tmp_path / "xmp"))
    assert counts["written"] == 5 and mirrored == str(tmp_path / "xmp") + photo + ".xmp"
    assert exiftool(mirrored)[0]["RegionName"] == "obama"
    assert sha == {p: hashlib.sha256(open(p, "rb").read()).hexdigest() for p in sha}  # sidecars never touch photos
    assert not [f for f in os.listdir(archive[0]) if f.endswith(".xmp")]

    counts = write_xmp(res, embed_in_photo=True, on_error=lambda path, message: None)
    assert counts["written"] == 5 and counts["failed"] == 0  # 5 named JPEGs; the unknown PNG is skipped
    (meta,) = exiftool(photo)
    assert meta["RegionName"] == "obama" and meta["HierarchicalSubject"] == "People|obama"
    assert exiftool(os.path.join(archive[0], "rotated.jpg"))[0]["Orientation"] == "Rotate 270 CW"
    assert write_xmp(res, embed_in_photo=True)["unchanged"] == 5
