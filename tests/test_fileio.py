"""crnn.fileio: atomic writes that refuse a folder and spare a live writer's temporary file."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from crnn.errors import CrnnError
from crnn.fileio import atomic_write


def test_writing_a_file_over_a_folder_names_the_folder(tmp_path):
    from crnn.fileio import atomic_write

    folder = tmp_path / "out"
    (folder / "keep").mkdir(parents=True)
    with pytest.raises(CrnnError, match="out: is a folder; give a file name"):
        atomic_write(folder, lambda f: f.write(b"x"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"] and (folder / "keep").is_dir()  # nothing left over


def test_stale_temp_cleanup_spares_a_live_writers_file(tmp_path):
    target = tmp_path / "last.pt"
    live = tmp_path / ".last.pt.live123.tmp"
    dead = tmp_path / ".last.pt.dead456.tmp"
    live.write_bytes(b"half a checkpoint")
    dead.write_bytes(b"left by a SIGKILL")
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, os, sys, time\n"
                               "fd = os.open(sys.argv[1], os.O_RDONLY); fcntl.flock(fd, fcntl.LOCK_EX)\n"
                               "print('locked', flush=True); time.sleep(120)", str(live)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        atomic_write(target, lambda f: f.write(b"new"))
        assert target.read_bytes() == b"new"
        assert live.exists() and not dead.exists()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    atomic_write(target, lambda f: f.write(b"newer"))
    assert not live.exists()
