"""Batches that cannot be done as asked: an empty folder, a folder of only bad files, a read-only output folder, a
full disk. Each gets one clear line and a non-zero exit; what can be done is done; nothing is half-written.

The read-only folder and the full disk are real file systems where this machine allows it (a tmpfs mounted
read-only, a 64 kB tmpfs; needs root and ``mount``); elsewhere the same errno is injected where visionkit creates
its temporary file, and the table row says which was used.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess

from click.testing import CliRunner

from tests.conftest import write_image
from tests.faults.conftest import listing
from visionkit.cli import cli


def _images(folder, count=3):
    for i in range(count):
        write_image(folder / f"im{i}.png", (40, 30), (5, 5, 20, 20))
    return folder


@contextlib.contextmanager
def tmpfs(path, options: str):
    """Mount a tmpfs at ``path`` (yields True), or yield False when this machine does not allow it."""
    path.mkdir(parents=True, exist_ok=True)
    try:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                                 capture_output=True).returncode == 0
    except OSError:  # no mount binary
        mounted = False
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", str(path)], capture_output=True)


def _inject(monkeypatch, code: int) -> None:
    """Make creating visionkit's temporary output files fail with ``code`` (when no real file system can)."""
    import tempfile

    def refuse(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(tempfile, "mkstemp", refuse)


def test_empty_folder(tmp_path, tiny_classifier, fault_row):
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(cli, ["classify", str(tmp_path / "empty"), "-m", str(tiny_classifier)])
    line = result.stderr.strip()
    assert result.exit_code == 1 and line == f"error: {tmp_path / 'empty'}: folder holds no images (use --recursive " \
                                              "to look in sub-folders)"
    fault_row("an empty folder", "`visionkit classify empty/`", f"`{line.replace(str(tmp_path) + '/', '')}`; exit 1",
              "nothing written")


def test_folder_of_only_bad_files(tmp_path, tiny_classifier, fault_row):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(b"")
    (folder / "b.png").write_text("not a png")
    (folder / "c.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\0" * 20)
    result = CliRunner().invoke(cli, ["classify", str(folder), "-m", str(tiny_classifier), "-o", str(tmp_path / "out.csv")])
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 4 and lines[-1] == "3 of 3 inputs failed"
    assert all(line.startswith(f"error: {folder}/") for line in lines[:3])
    rows = (tmp_path / "out.csv").read_text().splitlines()
    assert len(rows) == 4 and all(row.split(",")[-1] for row in rows[1:]), "one row per file, its error filled in"
    fault_row("a folder of only bad files", "`visionkit classify bad/ -o out.csv` (0-byte, text, a JPEG header only)",
              f"3 lines like `{lines[0].replace(str(tmp_path) + '/', '')}`, then `{lines[-1]}`; exit 1",
              "`out.csv` complete: header + one row per file with its error")


def test_read_only_output_folder(tmp_path, tiny_classifier, monkeypatch, fault_row):
    images = _images(tmp_path / "in")
    target = tmp_path / "ro"
    with tmpfs(target, "ro,size=64k") as mounted:
        if mounted:
            how = "a tmpfs mounted read-only"
        elif os.geteuid() != 0:
            target.chmod(0o555)
            how = "a folder with mode 0555"
        else:
            _inject(monkeypatch, errno.EROFS)
            how = "EROFS injected (mount refused here)"
        result = CliRunner().invoke(cli, ["classify", str(images), "-m", str(tiny_classifier),
                                          "-o", str(target / "labels.csv")])
        on_disk = listing(target)
    line = result.stderr.strip()
    assert result.exit_code == 1 and "\n" not in line
    assert line.startswith(f"error: {target / 'labels.csv'}: cannot write (") and "nothing was written" in line
    assert on_disk == "(empty)"
    fault_row("a read-only output folder", f"`visionkit classify in/ -o ro/labels.csv`, `ro/` being {how}",
              f"`{line.replace(str(tmp_path) + '/', '')[:110]}…`; exit 1",
              "`ro/` empty; the 3 images were classified before the write failed")


def test_full_disk(tmp_path, tiny_classifier, monkeypatch, fault_row):
    images = _images(tmp_path / "in", count=40)
    target = tmp_path / "full"
    with tmpfs(target, "size=64k") as mounted:
        if mounted:
            filler = target / "filler.bin"
            with contextlib.suppress(OSError), open(filler, "wb") as handle:
                while True:
                    handle.write(b"\0" * 4096)
                    handle.flush()
            os.truncate(filler, filler.stat().st_size - 4096)  # leave one page: too little for the output
            how = "a 64 kB tmpfs, filled up to its last 4 kB"
        else:
            _inject(monkeypatch, errno.ENOSPC)
            how = "ENOSPC injected (mount refused here)"
        result = CliRunner().invoke(cli, ["-q", "classify", str(images), "-m", str(tiny_classifier), "-k", "2",
                                          "-o", str(target / "labels.jsonl")])
        on_disk = listing(target)
    line = result.stderr.strip()
    assert result.exit_code == 1 and "\n" not in line
    assert line.startswith(f"error: {target / 'labels.jsonl'}: cannot write (No space left on device)")
    assert on_disk == ("filler.bin" if mounted else "(empty)"), "no labels.jsonl, not even a partial temporary file"
    fault_row("a full disk", f"`visionkit -q classify in/ -o full/labels.jsonl` (40 images, ~8 kB of output), `full/` "
              f"being {how}", f"`{line.replace(str(tmp_path) + '/', '')[:110]}…`; exit 1",
              "no `labels.jsonl` and no partial temporary file; the 40 images were classified before the write")
