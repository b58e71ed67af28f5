"""facetag.io.listing: every path an input names, accounted for, without opening anything."""

import os
import socket

from facetag.io.listing import list_paths


def _listing(pattern, root):
    return {os.path.relpath(p.path, root): p.problem for p in list_paths(pattern)}


def test_every_kind_of_path_is_listed_once_with_its_problem(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"x")
    (tmp_path / "photo.jpg").mkdir()  # a folder named like a photo: walked
    (tmp_path / "photo.jpg" / "inside.jpg").write_bytes(b"x")
    os.symlink("missing.jpg", tmp_path / "dangling.jpg")
    os.symlink("self.jpg", tmp_path / "self.jpg")
    os.symlink("..", tmp_path / "photo.jpg" / "up")
    os.symlink("/dev/null", tmp_path / "null.jpg")
    os.mkfifo(tmp_path / "pipe.jpg")
    socket.socket(socket.AF_UNIX).bind(str(tmp_path / "sock.jpg"))
    with open(os.path.join(os.fsencode(tmp_path), b"caf\xe9.jpg"), "wb") as f:
        f.write(b"x")
    (tmp_path / "new\nline.jpg").write_bytes(b"x")
    for skipped in (".DS_Store", "Thumbs.db", "a.xmp", "@eaDir", ".hidden"):
        (tmp_path / skipped).write_bytes(b"x")

    got = _listing(str(tmp_path), tmp_path)
    assert got == {
        "a.jpg": None,
        "photo.jpg/inside.jpg": None,
        "photo.jpg/up": "a symbolic link that loops back to a folder above it: not followed",
        "dangling.jpg": "a broken symbolic link (to missing.jpg, which does not exist)",
        "self.jpg": "a symbolic link that loops (it leads back to itself): not followed",
        "null.jpg": "a device file, not a photo: never opened",
        "pipe.jpg": "a named pipe (FIFO), not a photo: never opened",
        "sock.jpg": "a socket, not a photo: never opened",
        "caf\\xe9.jpg": got["caf\\xe9.jpg"],
        "new\nline.jpg": None,
    }
    assert "not UTF-8" in got["caf\\xe9.jpg"]
    assert all(p.path.encode("utf-8") for p in list_paths(str(tmp_path)))  # every name fits the outputs


def test_a_glob_accounts_for_a_folder_it_would_not_enter(tmp_path):
    (tmp_path / "photo.jpg").mkdir()
    (tmp_path / "photo.jpg" / "inside.jpg").write_bytes(b"x")
    (tmp_path / "b.jpg").write_bytes(b"x")
    assert _listing(str(tmp_path / "*.jpg"), tmp_path) == {
        "b.jpg": None,
        "photo.jpg": "a folder, not a photo: give the folder itself to read the photos in it"}
    assert _listing(str(tmp_path / "**" / "*.jpg"), tmp_path) == {"b.jpg": None, "photo.jpg/inside.jpg": None}


def test_a_recursive_glob_does_not_follow_a_link_loop(tmp_path, monkeypatch):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.jpg").write_bytes(b"x")
    (tmp_path / "b.jpg").write_bytes(b"x")
    (tmp_path / "c.png").write_bytes(b"x")
    os.symlink("..", tmp_path / "d" / "up")
    assert _listing(str(tmp_path / "**" / "*.jpg"), tmp_path) == {"b.jpg": None, "d/a.jpg": None}
    monkeypatch.chdir(tmp_path)
    assert {p.path for p in list_paths("**/*.jpg")} == {"b.jpg", "d/a.jpg"}
    # from d, the link leads out to the parent, whose d is where the walk came from: a loop, reported
    assert {p.path: bool(p.problem) for p in list_paths("d/**")} == {
        "d/a.jpg": False, "d/up/b.jpg": False, "d/up/c.png": False, "d/up/d": True}
