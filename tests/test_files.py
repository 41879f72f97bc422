"""A point's files: atomic JSON writes, and which failed writes are the machine's (a full disk, a folder that is
read-only or gone) rather than m9's."""

from __future__ import annotations

import errno

import pytest

from m9.run.files import write_failure, write_json


def test_a_failed_write_names_its_file_and_leaves_the_old_one(tmp_path, monkeypatch):
    path = write_json(tmp_path / "a.json", {"v": 1})

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")  # as write() raises it: no file named

    monkeypatch.setattr(type(path), "write_text", full)
    with pytest.raises(OSError) as err:
        write_json(path, {"v": 2})
    assert err.value.filename == str(path) and path.read_text() == '{\n "v": 1\n}'
    assert not (tmp_path / "a.tmp").exists()
    assert write_failure(err.value) == (f"no space left on device writing {path}", "free space")


def test_only_the_machines_failures_of_a_write_in_the_folder_are_write_failures(tmp_path):
    sweep = tmp_path / "sweep"
    gone = FileNotFoundError(errno.ENOENT, "No such file or directory", str(sweep / "1" / "job.json"))
    assert write_failure(gone, sweep) == (f"the folder is gone writing {sweep}/1/job.json",
                                          "give it back (or a new hydra.sweep.dir)")
    elsewhere = FileNotFoundError(errno.ENOENT, "No such file or directory", "/models/llama/config.json")
    assert write_failure(elsewhere, sweep) is None  # a read elsewhere: an error of its own, not the disk
    try:
        try:
            raise OSError(errno.EROFS, "Read-only file system", str(sweep / "m9_sweep.json"))
        except OSError as inner:
            raise RuntimeError("while launching") from inner
    except RuntimeError as outer:
        assert write_failure(outer, sweep) == (f"read-only file system writing {sweep}/m9_sweep.json",
                                               "make it writable")
    assert write_failure(ValueError("bad"), sweep) is None
