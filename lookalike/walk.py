"""Walking photo folders the way a real home folder needs: loops, links, odd names, stops.

::

    result = scan_paths(["~/Pictures"])
    for f in result.files: ...            # _Found(path=<text>, fspath=<os path>, size, mtime)
    print(result.summary())               # "skipped: 1 symlink loop, 2 links to folders outside …"

Rules, like ``find`` without ``-L``:

* a folder is entered at most once, however many links lead to it (``(st_dev, st_ino)`` is tracked),
  so a symlink loop (``loop -> ..``) costs one line in the summary, not an endless walk;
* a symlink to a folder is followed only when the folder lies inside the root being indexed (it is
  then walked once, under the first path found), unless ``follow_links=True``;
* a symlink to a file is followed; a link whose target is missing is reported as ``broken symlink``;
* a file reached by several paths (links, hard links) is indexed once, under a path that is not a link
  where there is one, so the same picture isn't reported as its own duplicate;
* names that are not UTF-8 are kept exactly (see :mod:`lookalike.paths`); ``path`` is the stored,
  printable text and ``fspath`` the name to open;
* ``should_stop()`` is checked every few entries, so a stop request ends the walk at once.
"""

from __future__ import annotations

import errno
import fnmatch
import os
import stat
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from lookalike.images.refs import IMAGE_SUFFIXES
from lookalike.paths import to_text

__all__ = ["DEFAULT_EXCLUDE", "Found", "ScanProblem", "ScanResult", "ScanStopped", "scan_paths"]

DEFAULT_EXCLUDE: tuple[str, ...] = (".*",)
"""Glob patterns skipped by default: hidden files and folders (``.thumbnails``, ``.git``, ...)."""

_CHECK_EVERY = 256  # entries between should_stop()/on_found() calls: microseconds apart, so a stop is instant

# reasons for entries passed over on purpose (counted in the summary, not failures)
LOOP = "symlink loop"
OUTSIDE = "link to a folder outside the indexed folder (--follow-links follows it)"
SEEN_FOLDER = "link to a folder indexed under another path"
SEEN_FILE = "path to a file indexed under another path"


class ScanStopped(Exception):
    """The walk was asked to stop (``should_stop()`` returned True)."""


@dataclass(frozen=True)
class Found:
    """An image file found by the walk."""

    path: str
    """The path as stored and printed (text; see :mod:`lookalike.paths`)."""
    fspath: str
    """The path to open (may hold surrogate escapes for names that are not UTF-8)."""
    size: int
    mtime: float


@dataclass(frozen=True)
class ScanProblem:
    """A file or folder that could not be indexed, with a fingerprint to recognise it next time."""

    path: str
    error: str
    size: int | None = None
    mtime: float | None = None


@dataclass
class ScanResult:
    """What :func:`scan_paths` found."""

    files: list[Found] = field(default_factory=list)
    problems: list[ScanProblem] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    """Folders (text paths) that could not be listed: rows under them must survive this run."""
    skipped: Counter[str] = field(default_factory=Counter)
    """Entries passed over on purpose, by reason (loops, outside links, second paths to a file)."""

    def summary(self) -> str:
        """One line saying what was passed over and why ("" when nothing was)."""
        if not self.skipped:
            return ""
        parts = []
        for reason, n in sorted(self.skipped.items(), key=lambda kv: (-kv[1], kv[0])):
            if reason == LOOP:
                parts.append(f"{n} symlink loop{'s' if n != 1 else ''}")
            elif reason == OUTSIDE:
                parts.append(
                    f"{n} link{'s' if n != 1 else ''} to folders outside the indexed folder "
                    "(--follow-links follows them)"
                )
            elif reason == SEEN_FOLDER:
                parts.append(f"{n} link{'s' if n != 1 else ''} to folders already indexed")
            elif reason == SEEN_FILE:
                parts.append(f"{n} more path{'s' if n != 1 else ''} to files already indexed")
            else:
                parts.append(f"{n} {reason}")
        return "skipped " + ", ".join(parts)


def _excluded(name: str, rel: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatch(name, p) or fnmatch.fnmatch(rel, p) for p in patterns)


def _is_image_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


class _Walker:
    def __init__(
        self,
        recursive: bool,
        exclude: Sequence[str],
        follow_links: bool,
        should_stop: Callable[[], bool] | None,
        on_found: Callable[[int], None] | None,
    ) -> None:
        self.recursive = recursive
        self.exclude = exclude
        self.follow_links = follow_links
        self.should_stop = should_stop
        self.on_found = on_found
        self.result = ScanResult()
        self.folders: set[tuple[int, int]] = set()
        # (dev, ino) -> (is a link, text path, Found): one entry per file, whatever the number of paths
        self.files: dict[tuple[int, int], tuple[bool, Found]] = {}
        self.plain: dict[str, Found] = {}  # files on file systems without inode numbers
        self.ticks = 0
        self.last_report = 0.0

    # ------------------------------------------------------------------ bookkeeping
    def tick(self) -> None:
        self.ticks += 1
        if self.ticks % _CHECK_EVERY:
            return
        if self.should_stop is not None and self.should_stop():
            raise ScanStopped
        now = time.monotonic()
        if self.on_found is not None and now - self.last_report >= 0.1:
            self.last_report = now
            self.on_found(len(self.files) + len(self.plain))

    def problem(self, path: str, error: str, st: os.stat_result | None = None) -> None:
        self.result.problems.append(
            ScanProblem(
                to_text(path),
                error,
                None if st is None else st.st_size,
                None if st is None else st.st_mtime,
            )
        )

    def add_file(self, fspath: str, st: os.stat_result, via_link: bool) -> None:
        found = Found(to_text(fspath), fspath, st.st_size, st.st_mtime)
        if st.st_ino == 0:  # some network and FUSE file systems: no identity to compare
            self.plain[found.path] = found
            return
        key = (st.st_dev, st.st_ino)
        old = self.files.get(key)
        if old is None:
            self.files[key] = (via_link, found)
            return
        self.result.skipped[SEEN_FILE] += 1
        # keep the real file over a link to it, then the first path in sorted order (stable across runs)
        if (via_link, found.path) < (old[0], old[1].path):
            self.files[key] = (via_link, found)

    # ------------------------------------------------------------------ the walk
    def root(self, raw: str | os.PathLike[str]) -> None:
        root = os.path.abspath(os.path.expanduser(os.fspath(raw)))
        try:
            st = os.stat(root)
        except OSError as exc:
            kind = "broken symlink" if os.path.islink(root) else f"cannot read: {_reason(exc)}"
            self.problem(root, kind)
            return
        if stat.S_ISREG(st.st_mode):
            self.add_file(root, st, via_link=os.path.islink(root))
            return
        if not stat.S_ISDIR(st.st_mode):
            self.problem(root, "not a regular file or folder")
            return
        real_root = os.path.realpath(root)
        self.folders.add((st.st_dev, st.st_ino))
        stack = [root]
        while stack:
            folder = stack.pop()
            for sub in self.folder(folder, root, real_root):
                stack.append(sub)

    def folder(self, folder: str, root: str, real_root: str) -> list[str]:
        """List one folder: add its images, return the sub-folders to walk (in reverse order)."""
        self.tick()
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            # the folder's rows must survive this run: a folder we can't list is not an empty one
            self.result.unreadable.append(to_text(folder))
            try:
                st = os.stat(folder)
            except OSError:
                st = None
            self.problem(folder, f"cannot read folder: {_reason(exc)}", st)
            return []
        subs: list[str] = []
        for entry in entries:
            self.tick()
            rel = os.path.relpath(entry.path, root)
            if _excluded(entry.name, rel, self.exclude):
                continue
            try:
                is_link = entry.is_symlink()
                if is_link:
                    sub = self.link(entry, folder, real_root)
                elif entry.is_dir(follow_symlinks=False):
                    sub = self.real_folder(entry)
                elif entry.is_file(follow_symlinks=False):
                    sub = None
                    if _is_image_name(entry.name):
                        self.add_file(entry.path, entry.stat(follow_symlinks=False), via_link=False)
                else:
                    sub = None  # FIFOs, sockets, devices: never opened (a FIFO would block)
            except OSError as exc:
                if _is_image_name(entry.name):
                    self.problem(entry.path, f"cannot read file: {_reason(exc)}")
                continue
            if sub is not None and self.recursive:
                subs.append(sub)
        subs.reverse()  # popped from a stack: walk in name order
        return subs

    def real_folder(self, entry: os.DirEntry[str]) -> str | None:
        st = entry.stat(follow_symlinks=False)
        key = (st.st_dev, st.st_ino)
        if key in self.folders:  # a bind mount of a folder already walked
            self.result.skipped[SEEN_FOLDER] += 1
            return None
        self.folders.add(key)
        return entry.path

    def link(self, entry: os.DirEntry[str], folder: str, real_root: str) -> str | None:
        try:
            st = os.stat(entry.path)  # follows the link
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # a -> b -> a: a loop of links, not a folder loop
                self.result.skipped[LOOP] += 1
            elif not _is_image_name(entry.name):
                self.result.skipped["broken symlinks"] += 1  # not a picture's name: not worth a failure
            elif exc.errno in (errno.ENOENT, errno.ENOTDIR):
                self.problem(entry.path, "broken symlink", entry.stat(follow_symlinks=False))
            else:
                self.problem(
                    entry.path, f"cannot read file: {_reason(exc)}", entry.stat(follow_symlinks=False)
                )
            return None
        if stat.S_ISREG(st.st_mode):
            if _is_image_name(entry.name) or _is_image_name(os.path.realpath(entry.path)):
                self.add_file(entry.path, st, via_link=True)
            return None
        if not stat.S_ISDIR(st.st_mode):
            return None
        key = (st.st_dev, st.st_ino)
        if key in self.folders:
            target = os.path.realpath(entry.path)
            if _inside(os.path.realpath(folder), target):
                self.result.skipped[LOOP] += 1  # the link leads back to a folder above it
            else:
                self.result.skipped[SEEN_FOLDER] += 1
            return None
        if not self.follow_links and not _inside(os.path.realpath(entry.path), real_root):
            self.result.skipped[OUTSIDE] += 1
            return None
        self.folders.add(key)
        return entry.path

    def finish(self) -> ScanResult:
        files = [f for _, f in self.files.values()] + list(self.plain.values())
        self.result.files = sorted(files, key=lambda f: f.path)
        return self.result


def scan_paths(
    paths: Iterable[str | os.PathLike[str]],
    *,
    recursive: bool = True,
    exclude: Sequence[str] = DEFAULT_EXCLUDE,
    follow_links: bool = False,
    should_stop: Callable[[], bool] | None = None,
    on_found: Callable[[int], None] | None = None,
) -> ScanResult:
    """Image files under ``paths`` (files given directly are taken whatever their suffix).

    Patterns in ``exclude`` match a file or folder name, or its path relative to the root given.
    ``on_found(n)`` reports the number of files found so far, a few times a second. Raises
    :class:`ScanStopped` when ``should_stop()`` returns True. See the module docstring for links.
    """
    walker = _Walker(recursive, exclude, follow_links, should_stop, on_found)
    for raw in paths:
        walker.root(raw)
    return walker.finish()
