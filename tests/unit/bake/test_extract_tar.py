"""Archives are extracted with tarfile's data filter, or, on a Python without filters (Debian 12's 3.11.2), the same refusals."""

from __future__ import annotations

import io
import tarfile

import pytest

from toolkit.bake.source import extract_tar


def archive(*members: tarfile.TarInfo) -> tarfile.TarFile:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for member in members:
            data = b"x" if member.isfile() else None
            if data:
                member.size = 1
            tar.addfile(member, io.BytesIO(data) if data else None)
    buf.seek(0)
    return tarfile.open(fileobj=buf)


def member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    return info


@pytest.fixture(params=["filters", "no filters"])
def python(request, monkeypatch):
    if request.param == "no filters":
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    return request.param


def test_an_app_folder_is_extracted(python, tmp_path):
    extract_tar(archive(member("app/web.py"), member("app/current", tarfile.SYMTYPE, "web.py")), tmp_path)
    assert (tmp_path / "app/web.py").read_bytes() == b"x" and (tmp_path / "app/current").resolve().name == "web.py"


@pytest.mark.parametrize(
    "bad",
    [
        member("../escaped"),
        member("app/out", tarfile.SYMTYPE, "../../escaped"),
        member("app/abs", tarfile.SYMTYPE, "/etc/passwd"),
        member("app/hard", tarfile.LNKTYPE, "../escaped"),
    ],
    ids=["dot-dot", "symlink out", "absolute symlink", "hard link out"],
)
def test_a_member_outside_the_folder_is_refused(python, tmp_path, bad):
    with pytest.raises(tarfile.TarError):
        extract_tar(archive(member("app/web.py"), bad), tmp_path / "dest")
    assert not (tmp_path / "escaped").exists()
