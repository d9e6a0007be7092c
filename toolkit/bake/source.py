"""An image's app source: a git repository at a ref, a folder, or an archive.

``resolve`` runs at plan time and pins the source to one exact content: a
git ref becomes its commit (``git ls-remote``, no clone), a folder becomes the
SHA-256 of its files, an archive is named by its declared SHA-256 (checked
now when it is a local file). That pin is an input of the bake, so a new
commit rebakes the image and the same commit reuses its AMI, wherever the
checkout lives.

``export`` runs only when the image is baked: it writes exactly that content
to a folder of the bake (``git archive`` of the commit from a bare mirror
kept under the cache directory, a copy of the folder, the unpacked archive)
and reads the app's version. The playbook gets the folder as the Ansible
variable ``rodeo_app_dir`` (and ``rodeo_app_commit``, ``rodeo_app_version``).
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import subprocess
import tarfile
import threading
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from toolkit.config import AppSource, Config, Image
from toolkit.errors import ConfigError

GIT_TIMEOUT = 120
_FETCHING = threading.Lock()  # two images of one source, baked at once, must not fetch into the same mirror or file
APP_DIR = "app"  # the bake's folder holding the exported source (the app's own files: not scanned as artifacts)


class SourceError(ConfigError):
    """An image's app source cannot be found, resolved or unpacked."""


@dataclass(frozen=True)
class Resolved:
    """An app source pinned to one content."""

    image: str
    kind: str  # git, dir or archive
    location: str  # as written in rodeo.yml (credentials taken out of URLs)
    ref: str | None  # git only: the ref asked for
    commit: str | None  # git only: what the ref resolved to
    digest: str  # the pin: the commit, or the content's SHA-256
    tags: tuple[str, ...] = field(default=())  # git tags pointing at the commit

    @property
    def pin(self) -> str:
        """The value of the bake's ``app`` input."""
        return f"{self.kind}:{self.digest}"

    @property
    def short(self) -> str:
        """The pin as a person reads it: a commit's first 7 digits, a digest's first 12."""
        return self.digest[:7] if self.kind == "git" else self.digest[:12]


@dataclass(frozen=True)
class Exported:
    """An app source written out for a bake."""

    path: Path
    version: str


def resolve(config: Config, image: Image, cache_dir: Path, ref: str | None = None) -> Resolved | None:
    """Pin ``image``'s app source (``ref`` overrides a git source's ref); None without one."""
    source = image.app_source
    if source is None:
        if ref is not None:
            raise SourceError(
                f"image {image.name} has no app_source, so --ref {ref} has nothing to choose",
                f"add app_source: {{git: ..., ref: ...}} to images.{image.name} in {config.shown_path}, or drop --ref",
            )
        return None
    if source.kind == "git":
        return _resolve_git(config, image.name, source, ref or source.ref, cache_dir)
    if ref is not None:
        raise SourceError(
            f"image {image.name}: --ref needs a git app source, not a {source.kind} ({source.location})", "drop --ref"
        )
    if source.kind == "dir":
        return Resolved(
            image.name, "dir", source.location, None, None, dir_digest(_local_dir(config, image.name, source))
        )
    return _resolve_archive(config, image.name, source)


def export(config: Config, image: Image, resolved: Resolved, dest: Path, cache_dir: Path) -> Exported:
    """Write ``resolved``'s content to ``dest`` (a new folder) and read the app's version."""
    source = image.app_source
    assert source is not None
    dest.mkdir(parents=True)
    if resolved.kind == "git":
        mirror = _mirror(config, image.name, source, cache_dir, want=resolved.commit)
        archive = _git(
            ["--git-dir", str(mirror), "archive", "--format=tar", str(resolved.commit)], image.name, source, text=False
        )
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            extract_tar(tar, dest)
    elif resolved.kind == "dir":
        shutil.copytree(
            _local_dir(config, image.name, source),
            dest,
            dirs_exist_ok=True,
            ignore=shutil.ignore_patterns(".git"),
            symlinks=True,
        )
        if dir_digest(dest) != resolved.digest:
            raise SourceError(
                f"image {image.name}: app source folder {source.location} changed during the bake",
                "bake again once it is stable",
            )
    else:
        _unpack(_fetch_archive(config, image.name, source, cache_dir), dest, image.name, source)
    return Exported(dest, version(resolved, dest, source.version_file))


def version(resolved: Resolved, tree: Path, version_file: str | None) -> str:
    """The app's version: a git tag of the commit, else the version file's first line, else the pin."""
    if resolved.tags:
        return sorted(resolved.tags, key=_version_key)[-1]
    if version_file:
        path = tree / version_file
        if path.is_file():
            first = path.read_text(errors="replace").strip().splitlines()
            if first and first[0].strip():
                return first[0].strip()[:128]
    return resolved.short


def dir_digest(folder: Path) -> str:
    """SHA-256 over every file's relative path, executable bit and bytes (``.git`` left out)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if ".git" not in p.relative_to(folder).parts):
        if path.is_symlink():
            data, mode = os.readlink(path).encode(), "l"
        elif path.is_file():
            data, mode = path.read_bytes(), "x" if os.access(path, os.X_OK) else "f"
        else:
            continue
        name = str(path.relative_to(folder)).encode()
        digest.update(b"%s\0%s\0%d\0" % (name, mode.encode(), len(data)))
        digest.update(data)
    return digest.hexdigest()


def public_location(location: str) -> str:
    """``location`` without credentials (``https://token@host/...`` -> ``https://host/...``)."""
    parts = urllib.parse.urlsplit(location)
    if parts.scheme and "@" in parts.netloc:
        return urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    return location


def _resolve_git(config: Config, image: str, source: AppSource, ref: str, cache_dir: Path) -> Resolved:
    """Pin ``ref`` to its commit, once: a name the repository advertises (no clone), else what ``git rev-parse`` makes of it there."""
    where = _git_location(config, source)
    if not _is_remote(where) and not Path(where).exists():
        raise SourceError(
            f"image {image}: app source {source.git}: no such folder ({where})",
            f"check app_source.git in {config.shown_path}: a URL, or a path relative to the project",
        )
    refs = _ls_remote(where, image, source)
    commit = _advertised(refs, ref) or _rev_parse(config, image, source, ref, where, refs.get("HEAD"), cache_dir)
    if commit is None:
        raise SourceError(
            f"image {image}: ref {ref!r} does not resolve in {public_location(source.location)}",
            "name a branch, a tag or a commit of it, or anything else git rev-parse takes there (HEAD~1, main^, v1.2.0); "
            f"git ls-remote {public_location(source.location)} lists its branches and tags",
        )
    tags = sorted(
        {
            name[len("refs/tags/") :].removesuffix("^{}")
            for name, sha in refs.items()
            if name.startswith("refs/tags/") and sha == commit and (name.endswith("^{}") or f"{name}^{{}}" not in refs)
        }
    )
    return Resolved(image, "git", public_location(source.location), ref, commit, commit, tuple(tags))


def _advertised(refs: dict[str, str], ref: str) -> str | None:
    """The commit of ``ref`` when the repository advertises it by that name (a branch, a tag, HEAD), else None."""
    for name in (ref, f"refs/heads/{ref}", f"refs/tags/{ref}", f"refs/remotes/{ref}"):
        commit = refs.get(f"{name}^{{}}") or refs.get(name)  # an annotated tag: the commit it points at
        if commit:
            return commit
    return None


def _rev_parse(
    config: Config, image: str, source: AppSource, ref: str, where: str, head: str | None, cache_dir: Path
) -> str | None:
    """What ``git rev-parse`` makes of ``ref`` in the app's repository (HEAD~1, main^, a short commit), or None.

    A repository on this machine answers itself (its HEAD, its reflog, its
    remote branches); one behind a URL answers through the bare mirror,
    whose HEAD is set to the repository's.
    """
    if ref.startswith("-"):
        return None
    if not _is_remote(where):
        return _commit_of(["-C", where], ref)
    return _commit_of(["--git-dir", str(_mirror(config, image, source, cache_dir, head=head))], ref)


def _commit_of(repository: list[str], ref: str) -> str | None:
    found = subprocess.run(
        ["git", *repository, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}"],
        capture_output=True,
        text=True,
        timeout=GIT_TIMEOUT,
    )
    return found.stdout.strip() if found.returncode == 0 else None


def _is_remote(where: str) -> bool:
    return "://" in where or re.match(r"^[\w.-]+@[\w.-]+:", where) is not None


def _git_location(config: Config, source: AppSource) -> str:
    """A URL as it is; a path relative to the project made absolute."""
    assert source.git is not None
    if _is_remote(source.git):
        return source.git
    return str((config.root / source.git).resolve())


def _ls_remote(where: str, image: str, source: AppSource) -> dict[str, str]:
    out = _git(["ls-remote", where], image, source)
    refs = {}
    for line in out.splitlines():
        sha, _, name = line.partition("\t")
        if name:
            refs[name] = sha
    return refs


def _git(args: list[str], image: str, source: AppSource, text: bool = True):
    env = dict(os.environ, GIT_TERMINAL_PROMPT="0")  # never wait for a password nobody will type
    try:
        proc = subprocess.run(["git", *args], capture_output=True, text=text, timeout=GIT_TIMEOUT, env=env)
    except subprocess.TimeoutExpired:
        raise SourceError(
            f"image {image}: git did not answer within {GIT_TIMEOUT}s for {public_location(source.location)}",
            "check the network and the repository's address",
        ) from None
    except FileNotFoundError:
        raise SourceError("git is not installed", "install it (apt-get install git)") from None
    if proc.returncode != 0:
        reason = git_reason(proc.stderr if text else proc.stderr.decode(errors="replace"))
        raise SourceError(
            f"image {image}: git cannot read app source {public_location(source.location)}: {reason}",
            "check app_source.git in rodeo.yml: a URL, or a path relative to the project",
        )
    return proc.stdout


def git_reason(stderr: str) -> str:
    """The line of git's stderr that says why: its first ``fatal:`` or ``error:`` line (without the prefix), else its last line."""
    lines = [" ".join(line.split()) for line in stderr.strip().splitlines() if line.strip()]
    said = next((line.split(":", 1)[1].strip() for line in lines if line.startswith(("fatal:", "error:"))), None)
    return said or (lines[-1] if lines else "failed")


def _mirror(
    config: Config, image: str, source: AppSource, cache_dir: Path, want: str | None = None, head: str | None = None
) -> Path:
    """A bare mirror of the repository under ``cache_dir``, fetched now (branches and tags; ``want``, a commit, too).

    ``head`` is the repository's HEAD commit: the mirror's HEAD is set to it, so HEAD~1 means there what it means in the repository.
    """
    with _FETCHING:
        return _fetched_mirror(config, image, source, cache_dir, want, head)


def _fetched_mirror(
    config: Config, image: str, source: AppSource, cache_dir: Path, want: str | None, head: str | None
) -> Path:
    where = _git_location(config, source)
    mirror = cache_dir / "sources" / (hashlib.sha256(where.encode()).hexdigest()[:16] + ".git")
    if want and mirror.is_dir() and _has(mirror, want):
        return mirror
    if not mirror.is_dir():
        mirror.parent.mkdir(parents=True, exist_ok=True)
        _git(["init", "--quiet", "--bare", str(mirror)], image, source)
    _git(
        [
            "--git-dir",
            str(mirror),
            "fetch",
            "--quiet",
            "--prune",
            "--tags",
            "--force",
            where,
            "+refs/heads/*:refs/heads/*",
            *([head] if head else []),
        ],
        image,
        source,
    )
    if want and not _has(mirror, want):  # a commit on no branch or tag (a detached HEAD's, HEAD~1 of one)
        _git(["--git-dir", str(mirror), "fetch", "--quiet", where, want], image, source)
    if head:
        _git(["--git-dir", str(mirror), "update-ref", "--no-deref", "HEAD", head], image, source)
    return mirror


def _has(mirror: Path, commit: str) -> bool:
    return (
        subprocess.run(
            ["git", "--git-dir", str(mirror), "cat-file", "-e", f"{commit}^{{commit}}"],
            capture_output=True,
            timeout=GIT_TIMEOUT,
        ).returncode
        == 0
    )


def _local_dir(config: Config, image: str, source: AppSource) -> Path:
    folder = (config.root / str(source.dir)).resolve()
    if not folder.is_dir():
        raise SourceError(
            f"image {image}: app source folder {source.dir} does not exist",
            "fix app_source.dir in rodeo.yml (relative to the project)",
        )
    if not any(p for p in folder.rglob("*") if p.is_file() and ".git" not in p.relative_to(folder).parts):
        raise SourceError(
            f"image {image}: app source folder {source.dir} is empty",
            "put the app's code in it, or point app_source.dir elsewhere",
        )
    return folder


def _resolve_archive(config: Config, image: str, source: AppSource) -> Resolved:
    if not _is_url(str(source.archive)):
        path = _archive_path(config, image, source)
        _check_sha(path, image, source)
    return Resolved(image, "archive", public_location(str(source.archive)), None, None, str(source.sha256))


def _is_url(location: str) -> bool:
    return urllib.parse.urlsplit(location).scheme in ("http", "https")


def _archive_path(config: Config, image: str, source: AppSource) -> Path:
    path = (config.root / str(source.archive)).resolve()
    if not path.is_file():
        raise SourceError(
            f"image {image}: app source archive {source.archive} does not exist",
            "fix app_source.archive in rodeo.yml (relative to the project)",
        )
    return path


def _check_sha(path: Path, image: str, source: AppSource) -> None:
    actual = hashlib.sha256(path.read_bytes()).hexdigest()
    if actual != source.sha256:
        raise SourceError(
            f"image {image}: app source archive {public_location(str(source.archive))} has sha256 {actual[:12]}..., not {str(source.sha256)[:12]}... as rodeo.yml says",
            "if the new archive is the one you want, put its sha256 in app_source.sha256",
        )


def _fetch_archive(config: Config, image: str, source: AppSource, cache_dir: Path) -> Path:
    """The archive as a local file: itself, or a download kept in the cache by its sha256."""
    if not _is_url(str(source.archive)):
        path = _archive_path(config, image, source)
        _check_sha(path, image, source)
        return path
    kept = cache_dir / "sources" / f"{source.sha256}.archive"
    with _FETCHING:
        _download(kept, image, source)
    return kept


def _download(kept: Path, image: str, source: AppSource) -> None:
    if not kept.is_file():
        kept.parent.mkdir(parents=True, exist_ok=True)
        part = kept.with_suffix(".part")
        try:
            with urllib.request.urlopen(str(source.archive), timeout=60) as answer, part.open("wb") as out:
                shutil.copyfileobj(answer, out)
        except OSError as exc:
            raise SourceError(
                f"image {image}: cannot download {public_location(str(source.archive))} ({exc})",
                "check the URL and the network",
            ) from None
        _check_sha(part, image, source)
        part.replace(kept)


def extract_tar(tar: tarfile.TarFile, dest: Path) -> None:
    """Extract ``tar`` into ``dest`` with tarfile's ``data`` filter: nothing outside ``dest``, no device.

    Python before 3.11.4 (Debian 12's own 3.11.2) has no filters: there the
    same members are refused first (TarError), then all are extracted.
    """
    if hasattr(tarfile, "data_filter"):
        tar.extractall(dest, filter="data")
        return
    root = dest.resolve()
    for member in tar.getmembers():
        path = (root / member.name).resolve()
        if member.issym():
            link = None if member.linkname.startswith("/") else (path.parent / member.linkname).resolve()
        else:
            link = (root / member.linkname).resolve() if member.islnk() else root
        inside = not member.name.startswith("/") and path.is_relative_to(root) and link and link.is_relative_to(root)
        if not inside or member.isdev():
            raise tarfile.TarError(f"{member.name!r} would be written outside the folder, or is a device")
    tar.extractall(dest)


def _unpack(path: Path, dest: Path, image: str, source: AppSource) -> None:
    """Unpack a tar (any compression) or zip into ``dest``; a single top folder is stripped."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                for member in archive.namelist():
                    if member.startswith("/") or ".." in Path(member).parts:
                        raise SourceError(
                            f"image {image}: archive {source.archive} has an unsafe path {member!r}",
                            "rebuild the archive with relative paths",
                        )
                archive.extractall(dest)
        else:
            with tarfile.open(path) as archive:
                extract_tar(archive, dest)
    except (tarfile.TarError, zipfile.BadZipFile, OSError) as exc:
        raise SourceError(
            f"image {image}: cannot unpack {public_location(str(source.archive))} ({exc})",
            "use a .tar.gz, .tar or .zip",
        ) from None
    entries = list(dest.iterdir())
    if len(entries) == 1 and entries[0].is_dir():
        top = entries[0]
        for child in list(top.iterdir()):
            child.rename(dest / child.name)
        top.rmdir()


def _version_key(tag: str) -> tuple:
    return tuple(int(p) if p.isdigit() else -1 for p in re.split(r"[.\-+]", tag.lstrip("v")))
