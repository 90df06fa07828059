"""Reading with a size cap: the one file reader of the checks, and what a pipe keeps.

Nothing a check reads may make it grow without bound: a file that is ``/dev/zero`` (or a link
to it, or a FIFO with an endless writer), a peer that prints 300 MiB. ``read_file`` reads at
most a limit and refuses what is larger, whatever ``fstat`` says the size is (0 for a device,
a FIFO or a /proc file); it waits on a device or FIFO no longer than the check's --timeout.
``Capture`` keeps the start and the end of a pipe's output and only counts the rest.
"""
import errno
import os
import select
import stat

from osop_checks import deadline

LIMIT = 1024 * 1024  # bytes kept of anything read, unless the caller needs more


def size_words(count):
    """'512 bytes', '4 KiB', '300 MiB', '3.0 GiB'."""
    if count < 1024:
        return "%d bytes" % count
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        count /= 1024.0
        if count < 1024 or unit == "TiB":
            return ("%.0f %s" if count >= 10 or count == int(count) else "%.1f %s") % (
                count, unit)


class TooLarge(OSError):
    """A file holds (or a device or FIFO gives) more than the reader's limit: an OSError
    (EFBIG) whose strerror says so, caught wherever a file that cannot be read is."""

    def __init__(self, path, limit):
        super().__init__(errno.EFBIG, "larger than %s" % size_words(limit), path)
        self.limit = limit


def read_fd(fd, limit=LIMIT):
    """At most ``limit + 1`` bytes from ``fd`` (one more than ``limit`` says there is more).
    A descriptor that is not a regular file is waited on with select, within the check's
    --timeout (deadline.Timeout when it runs out)."""
    regular = stat.S_ISREG(os.fstat(fd).st_mode)
    chunks, size = [], 0
    while size <= limit:
        if not regular:
            ready, _, _ = select.select([fd], [], [], deadline.remaining(None))
            if not ready:
                raise deadline.Timeout("no data within the check's --timeout")
        try:
            chunk = os.read(fd, min(65536, limit + 1 - size))
        except BlockingIOError:
            continue
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def read_file(path, limit=LIMIT, keep=None, nofollow=False):
    """The bytes of ``path``, at most ``limit``; more raises TooLarge, unless ``keep`` says
    which ``limit`` bytes to keep: 'start', or 'end' (the last bytes of a regular file, a
    log's newest lines; a device or FIFO has no end and is refused). ``nofollow``: a symbolic
    link is refused (OSError ELOOP). A missing file raises FileNotFoundError, as open does."""
    flags = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | (os.O_NOFOLLOW if nofollow else 0)
    fd = os.open(path, flags)
    try:
        info = os.fstat(fd)
        if keep == "end" and stat.S_ISREG(info.st_mode) and info.st_size > limit:
            os.lseek(fd, info.st_size - limit, os.SEEK_SET)
        data = read_fd(fd, limit)
    finally:
        os.close(fd)
    if len(data) <= limit or keep == "start" or (keep == "end" and stat.S_ISREG(
            info.st_mode)):
        return data[:limit]
    raise TooLarge(path, limit)


def read_text(path, limit=LIMIT, errors="replace", **options):
    """``read_file`` decoded as UTF-8 (``errors`` as for bytes.decode)."""
    return read_file(path, limit, **options).decode("utf-8", errors)


class Capture:
    """What is kept of a pipe: its first ``limit`` bytes and its last ``tail`` bytes; the
    rest is counted (``size``) and dropped, so an endless writer costs no memory."""

    def __init__(self, limit=LIMIT, tail=64 * 1024):
        self.limit = limit
        self.tail_limit = tail
        self.head = bytearray()
        self.tail = bytearray()
        self.size = 0

    def add(self, chunk):
        self.size += len(chunk)
        room = self.limit - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if chunk and self.tail_limit:
            self.tail += chunk
            if len(self.tail) > self.tail_limit:
                del self.tail[:len(self.tail) - self.tail_limit]

    @property
    def overflow(self):
        return self.size > self.limit

    def data(self):
        """All that was written when it fit, else its first ``limit`` bytes."""
        return bytes(self.head)

    def end(self):
        """The last bytes written (up to ``limit``, or ``tail`` once it overflowed): where a
        command's last error line is."""
        return bytes(self.tail) if self.overflow else bytes(self.head[-max(
            self.tail_limit, 1):])
