"""The source file to blame for a report (syzkaller's extractGuiltyFile).

A symbolized report names files beside its frames ('func+0x1/0x2
mm/mmap.c:123'), and WARNINGs and BUGs name theirs in the header. The
guilty file is the first one that is not generic machinery (headers,
lib/, the sanitizers, locking, scheduling, printk, ...), moved deeper when
a later frame is in a subdirectory of it. Without any file:line in the
report it is "". Rules ported from syzkaller's pkg/report/linux.go.
"""
from __future__ import annotations

import posixpath
import re
from collections.abc import Sequence

# syzkaller's filenameRe is ([a-zA-Z0-9_\-\./]*[a-zA-Z0-9_\-]+\.(c|h)):[0-9]+;
# it is searched from its literal end backwards, which is much faster.
_SOURCE_END = re.compile(r"\.[ch]:[0-9]")
_PATH_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./")
_NAME_CHARS = _PATH_CHARS - {".", "/"}
# A slash and at least one more directory before a .c/.h file.
_DEEPER = re.compile(r"^/[a-zA-Z0-9_\-\./]+/[a-zA-Z0-9_\-]+\.(c|h)$")
_IGNORED_FILES = re.compile("|".join((
    r".*\.h", r"^lib/.*", r"^virt/lib/.*", r"^mm/kasan/.*", r"^mm/kmsan/.*", r"^kernel/kcov.c",
    r"^mm/sl.b.c", r"^mm/filemap.c", r"^mm/folio-compat.c", r"^mm/truncate.c", r"^mm/memory.c",
    r"^mm/percpu.*", r"^mm/vmalloc.c", r"^mm/page_alloc.c", r"^mm/mempool.c", r"^mm/util.c",
    r"^kernel/rcu/.*", r"^arch/.*/kernel/traps.c", r"^arch/.*/kernel/unwind.*.c",
    r"^arch/.*/mm/fault.c", r"^arch/.*/mm/physaddr.c", r"^arch/.*/kernel/stacktrace.c",
    r"^arch/.*/kernel/apic/apic.c", r"^arch/arm64/kernel/entry.*.c", r"^arch/arm64/kernel/process\.c",
    r"^kernel/locking/.*", r"^kernel/panic.c", r"^kernel/printk/printk.*.c", r"^kernel/softirq.c",
    r"^kernel/kthread.c", r"^kernel/sched/.*.c", r"^kernel/stacktrace.c", r"^kernel/time/timer.c",
    r"^kernel/workqueue.c", r"^net/core/dev.c", r"^net/core/sock.c", r"^net/core/skbuff.c",
    r"^fs/proc/generic.c", r"^trusty/", r"^drivers/usb/core/urb.c", r"^arch/.*/lib/crc.*",
)))
_IGNORED_LINE = re.compile(r"(hardirqs|softirqs)\s+last\s+(enabled|disabled)|^Register r\d+ information")
# RCU stalls: too many generic frames sit above the interrupted code.
_STALL_ENTRIES = ("apic_timer_interrupt+0x", "el1h_64_irq+0x", "Exception stack")


def guilty_file(title: str, lines: Sequence[str]) -> str:
    """The file to blame, from a report's (prefix-stripped) lines."""
    if title.startswith("INFO: rcu detected stall"):
        for entry in _STALL_ENTRIES:
            for index, line in enumerate(lines):
                if entry in line:
                    found = _guilty(_with_files(lines[index + 1:], line[line.find(entry):]))
                    if found:
                        return found
                    break
    return _guilty(_with_files(lines, None))


def _with_files(lines: Sequence[str], first: str | None) -> list[str]:
    """The lines that may name a file ('.c:' or '.h:'), `first` before them;
    the others cannot change what _guilty finds."""
    found = [first] if first is not None and (".c:" in first or ".h:" in first) else []
    found.extend(line for line in lines if ".c:" in line or ".h:" in line)
    return found


def _first_file(line: str) -> str | None:
    """The path of the first 'path/file.c:123' in the line, or None."""
    for end in _SOURCE_END.finditer(line):
        dot = end.start()
        if dot == 0 or line[dot - 1] not in _NAME_CHARS:
            continue
        start = dot - 1
        while start > 0 and line[start - 1] in _PATH_CHARS:
            start -= 1
        return line[start:dot + 2]
    return None


def _ignored(file: str, line: str) -> bool:
    return _IGNORED_FILES.match(file) is not None or _IGNORED_LINE.search(line) is not None


def _guilty(lines: Sequence[str]) -> str:
    """syzkaller's extractGuiltyFileImpl."""
    guilty = ""
    rest = iter(lines)
    for line in rest:
        file = _first_file(line)
        if file is None:
            continue
        if not guilty:
            guilty = file  # rather some file than none
        if _ignored(file, line):
            continue
        guilty = posixpath.normpath(file)
        break
    else:
        return guilty
    deepest = posixpath.dirname(guilty) or "."
    for line in rest:
        file = _first_file(line)
        if file is None or _ignored(file, line):
            continue
        clean = posixpath.normpath(file)
        if clean.startswith(deepest) and _DEEPER.match(clean[len(deepest):]):
            guilty = clean
            deepest = posixpath.dirname(guilty) or "."
    return guilty
