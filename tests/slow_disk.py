"""A slow disk for tests: a FUSE passthrough of a directory that waits before each write.

Run as a process of its own (the GIL of a server under test is never shared with it)::

    python3 tests/slow_disk.py SOURCE MOUNTPOINT --delay-ms 20

Every ``write``, ``fsync`` and ``flush`` waits ``--delay-ms`` first, as a slow or
contended disk would; reads pass straight through. Needs ``/dev/fuse``, libfuse2 and
fusepy. ``fusermount -u MOUNTPOINT`` (or ending the process) unmounts it.
"""

from __future__ import annotations

import argparse
import errno
import os
import time

from fuse import FUSE, FuseOSError, Operations


class SlowPassthrough(Operations):
    """Every call on the mount goes to the same path under ``root``; writes wait first."""

    def __init__(self, root: str, delay_s: float) -> None:
        self.root, self.delay_s = os.path.realpath(root), delay_s

    def _full(self, path: str) -> str:
        return os.path.join(self.root, path.lstrip("/"))

    def _wait(self) -> None:
        time.sleep(self.delay_s)

    # -- files and folders ----------------------------------------------------------------

    def access(self, path: str, mode: int) -> None:
        if not os.access(self._full(path), mode):
            raise FuseOSError(errno.EACCES)

    def getattr(self, path: str, fh: int | None = None) -> dict:
        st = os.lstat(self._full(path))
        return {key: getattr(st, key) for key in (
            "st_atime", "st_ctime", "st_gid", "st_mode", "st_mtime", "st_nlink", "st_size",
            "st_uid")}

    def readdir(self, path: str, fh: int) -> list[str]:
        return [".", "..", *os.listdir(self._full(path))]

    def statfs(self, path: str) -> dict:
        st = os.statvfs(self._full(path))
        return {key: getattr(st, key) for key in (
            "f_bavail", "f_bfree", "f_blocks", "f_bsize", "f_favail", "f_ffree", "f_files",
            "f_flag", "f_frsize", "f_namemax")}

    def chmod(self, path: str, mode: int) -> None:
        os.chmod(self._full(path), mode)

    def chown(self, path: str, uid: int, gid: int) -> None:
        os.chown(self._full(path), uid, gid)

    def mkdir(self, path: str, mode: int) -> None:
        os.mkdir(self._full(path), mode)

    def rmdir(self, path: str) -> None:
        os.rmdir(self._full(path))

    def unlink(self, path: str) -> None:
        self._wait()
        os.unlink(self._full(path))

    def rename(self, old: str, new: str) -> None:
        self._wait()
        os.rename(self._full(old), self._full(new))

    def link(self, target: str, name: str) -> None:
        os.link(self._full(name), self._full(target))

    def symlink(self, name: str, target: str) -> None:
        os.symlink(target, self._full(name))

    def readlink(self, path: str) -> str:
        return os.readlink(self._full(path))

    def utimens(self, path: str, times: tuple[float, float] | None = None) -> None:
        os.utime(self._full(path), times)

    # -- file contents --------------------------------------------------------------------

    def open(self, path: str, flags: int) -> int:
        return os.open(self._full(path), flags)

    def create(self, path: str, mode: int, fi: object = None) -> int:
        return os.open(self._full(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)

    def read(self, path: str, length: int, offset: int, fh: int) -> bytes:
        return os.pread(fh, length, offset)

    def write(self, path: str, data: bytes, offset: int, fh: int) -> int:
        self._wait()
        return os.pwrite(fh, data, offset)

    def truncate(self, path: str, length: int, fh: int | None = None) -> None:
        with open(self._full(path), "r+b") as f:
            f.truncate(length)

    def flush(self, path: str, fh: int) -> None:
        self._wait()

    def fsync(self, path: str, datasync: int, fh: int) -> None:
        self._wait()
        os.fsync(fh)

    def release(self, path: str, fh: int) -> None:
        os.close(fh)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source")
    parser.add_argument("mountpoint")
    parser.add_argument("--delay-ms", type=float, default=20.0)
    args = parser.parse_args()
    FUSE(SlowPassthrough(args.source, args.delay_ms / 1000), args.mountpoint, foreground=True,
         nothreads=False, attr_timeout=0, entry_timeout=0, negative_timeout=0)


if __name__ == "__main__":
    main()
