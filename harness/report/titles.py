"""Title normalisation and the title -> type / kind classification.

Titles must be stable across runs so that the same bug gets the same
title: addresses, pids, line numbers and CPU numbers are replaced by
placeholders the way syzkaller does. The crash `type` is derived from the
title's prefix (syzkaller's title-to-type table); our coarse `kind` comes
from the matched format when it says so, else from the title as well.
"""
from __future__ import annotations

import re
from functools import lru_cache

# Applied in order, each until the string stops changing.
_REPLACEMENTS = (
    (re.compile(r"syz-executor\.?[0-9]+((/|:)[0-9]+)?"), "syz-executor"),
    (re.compile(r"syzkaller[0-9]+((/|:)[0-9]+)?"), "syzkaller"),
    # Anything that looks like an address.
    (re.compile(r"([^a-zA-Z0])(?:0x)?[0-9a-f]{6,}"), r"\1ADDR"),
    (re.compile(r"([0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3})"), "IP"),
    # IPv6 addresses (as the kernel's %pI6/%pI6c print them): eight groups,
    # or fewer around one '::'. Before :LINE and NUM would take them apart.
    (re.compile(r"(?<![\w:])(?:(?:[0-9a-f]{1,4}:){7}[0-9a-f]{1,4}"
                r"|(?:[0-9a-f]{1,4}:){1,7}:(?:[0-9a-f]{1,4}(?::[0-9a-f]{1,4}){0,5})?"
                r"|::[0-9a-f]{1,4}(?::[0-9a-f]{1,4}){0,6})(?![\w:])"), "IPV6ADDR"),
    (re.compile(r"(\.\w+)(:[0-9]+)+"), r"\1:LINE"),
    # 'ip6_fragment+0x1052/0x2d80' -> 'ip6_fragment': offsets are not stable.
    (re.compile(r"([a-zA-Z][a-zA-Z0-9_.]+)\+0x[0-9a-z]+/0x[0-9a-z]+"), r"\1"),
    (re.compile(r"CPU#[0-9]+"), "CPU"),
    # Module tags ('func [mmlock]') vary with how the code was built.
    (re.compile(r" \[[a-z0-9_]+\](?= |$)"), ""),
    # Remaining decimal numbers (may overlap, hence the fixpoint loop).
    (re.compile(r"(\W)(\d+)(\W|$)"), r"\1NUM\3"),
)
_MAX_TITLE = 120  # corrupted / intermixed lines can be very long
# syzkaller's reportFrameRe: the frame is what follows the title's last ' in '.
_TITLE_FRAME = re.compile(r".* in ((?:<[a-zA-Z0-9_: ]+>)?[a-zA-Z0-9_:]+)")


# After the replacements: tabs read as spaces, other control and non-ASCII
# characters are dropped, runs of spaces become one.
_UNPRINTABLE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\U0010ffff]+")
_SPACES = re.compile(" {2,}")


@lru_cache(maxsize=4096)  # the same bug gives the same raw title again and again
def normalize_title(title: str) -> str:
    for pattern, repl in _REPLACEMENTS:
        while True:
            new, count = pattern.subn(repl, title)
            if not count or new == title:
                break
            title = new
    title = _UNPRINTABLE.sub("", title[:_MAX_TITLE].replace("\t", " "))
    return _SPACES.sub(" ", title).strip()


def title_frame(title: str) -> str:
    """The function a title names, as syzkaller derives Report.Frame."""
    match = _TITLE_FRAME.match(title)
    return match.group(1) if match else ""


# (title prefixes, syzkaller crash type); first matching row wins.
_TYPE_TABLE: tuple[tuple[tuple[str, ...], str], ...] = (
    (("KFENCE: use-after-free write",), "KFENCE-USE-AFTER-FREE-WRITE"),
    (("KFENCE: use-after-free read", "KFENCE: use-after-free"), "KFENCE-USE-AFTER-FREE-READ"),
    (("KFENCE: invalid write", "KFENCE: out-of-bounds write"), "KFENCE-WRITE"),
    (("KFENCE: invalid read", "KFENCE: out-of-bounds read", "KFENCE: out-of-bounds"), "KFENCE-READ"),
    (("KFENCE: memory corruption",), "KFENCE-MEMORY-CORRUPTION"),
    (("KFENCE: invalid free",), "KFENCE-INVALID-FREE"),
    (("KMSAN: uninit-value",), "KMSAN-UNINIT-VALUE"),
    (("KMSAN: kernel-infoleak-after-free", "KMSAN: kernel-usb-infoleak-after-free",
      "KMSAN: use-after-free"), "KMSAN-USE-AFTER-FREE-READ"),
    (("KMSAN: kernel-infoleak", "KMSAN: kernel-usb-infoleak"), "KMSAN-INFO-LEAK"),
    (("KASAN: null-ptr-deref Write",), "KASAN-NULL-POINTER-DEREFERENCE-WRITE"),
    (("KASAN: null-ptr-deref Read",), "KASAN-NULL-POINTER-DEREFERENCE-READ"),
    (("BUG: unable to handle kernel NULL pointer dereference in",), "NULL-POINTER-DEREFERENCE"),
    (tuple(f"KASAN: {k} Write" for k in (
        "global-out-of-bounds", "out-of-bounds", "slab-out-of-bounds", "stack-out-of-bounds",
        "user-memory-access", "vmalloc-out-of-bounds", "wild-memory-access")), "KASAN-WRITE"),
    (tuple(f"KASAN: {k} Read" for k in (
        "global-out-of-bounds", "invalid-access", "out-of-bounds", "slab-out-of-bounds",
        "stack-out-of-bounds", "unknown-crash", "user-memory-access", "vmalloc-out-of-bounds",
        "wild-memory-access")) + ("KASAN: slab-out-of-bounds", "KASAN: stack-out-of-bounds",
                                  "KASAN: wild-memory-access"), "KASAN-READ"),
    (("KASAN: double-free or invalid-free", "KASAN: invalid-free"), "KASAN-INVALID-FREE"),
    (("KASAN: slab-use-after-free Write", "KASAN: use-after-free Write"), "KASAN-USE-AFTER-FREE-WRITE"),
    (("KASAN: slab-use-after-free Read", "KASAN: use-after-free Read", "KASAN: use-after-free"),
     "KASAN-USE-AFTER-FREE-READ"),
    (("BUG: corrupted list", "BUG: unable to handle kernel paging request"), "MEMORY_SAFETY_BUG"),
    (("WARNING: refcount bug",), "REFCOUNT_WARNING"),
    (("UBSAN: array-index-out-of-bounds",), "MEMORY_SAFETY_UBSAN"),
    (("KCSAN: data-race",), "KCSAN-DATARACE"),
    (("KCSAN: assert: race in",), "KCSAN-ASSERT"),
    (("BUG: bad unlock balance in", "BUG: held lock freed in", "BUG: rwlock", "BUG: spinlock",
      "BUG: still has locks held in", "BUG: using", "WARNING: bad unlock balance in",
      "WARNING: held lock freed in", "WARNING: lock held", "WARNING: locking bug in",
      "WARNING: nested lock was not taken in", "WARNING: still has locks held in",
      "WARNING: suspicious RCU usage in", "inconsistent lock state in", "possible deadlock in",
      "BUG: Invalid wait context", "BUG: lockdep bug"), "LOCKDEP"),
    (("BUG: scheduling while atomic in", "BUG: sleeping function called from invalid context in"),
     "ATOMIC_SLEEP"),
    (("memory leak in",), "LEAK"),
    (("BUG: bad usercopy in", "kernel BUG"), "BUG"),
    (("WARNING in",), "WARNING"),
    (("BUG: stack guard page was hit in", "WARNING: corrupted",
      "WARNING: kernel stack frame pointer has bad value", "WARNING: kernel stack regs has bad"), ""),
    (("BUG: soft lockup in", "INFO: rcu detected stall in", "INFO: task can't die in",
      "INFO: task hung in", "BUG: hard lockup in"), "HANG"),
    (("Alignment trap in", "BUG: Object already free", "Internal error in", "PANIC: double fault",
      "Unhandled fault in", "VFS: Busy inodes after unmount (use-after-free)",
      "VFS: Close: file count is zero (use-after-free)", "divide error in",
      "general protection fault in", "go runtime error", "invalid opcode in", "kernel panic:",
      "kernel stack overflow", "panic:", "rust_kernel panicked", "stack segment fault in", "trusty:",
      "unregister_netdevice: waiting for DEV to become free"), "DoS"),
    (("unexpected kernel reboot",), "REBOOT"),
    (("SYZFAIL", "SYZFATAL:"), "SYZ_FAILURE"),
    # Defaults by family.
    (("WARNING:",), "WARNING"),
    (("BUG:", "INFO:"), ""),
    (("KASAN:",), "KASAN-UNKNOWN"),
    (("KFENCE:",), "KFENCE-UNKNOWN"),
    (("KMSAN:",), "KMSAN-UNKNOWN"),
    (("UBSAN:",), "UBSAN"),
    (("KCSAN:",), "KCSAN-UNKNOWN"),
)


def title_type(title: str) -> str:
    """syzkaller's crash type for a title; "" when it has none (UNKNOWN)."""
    for prefixes, crash_type in _TYPE_TABLE:
        if title.startswith(prefixes):
            return crash_type
    return ""


# (title prefixes, kind) for titles whose format did not set a kind.
_KIND_TABLE: tuple[tuple[tuple[str, ...], str], ...] = (
    (("KASAN:", "KMSAN:"), "kasan"),
    (("KFENCE:",), "kfence"),
    (("UBSAN:",), "ubsan"),
    (("KCSAN:",), "kcsan"),
    (("BUG: corrupted list",), "list-corruption"),
    (("WARNING: refcount bug",), "refcount"),
    (("BUG: sleeping function", "BUG: scheduling while atomic"), "atomic-sleep"),
    (("BUG: using",), "preempt"),
    (("INFO: task hung", "INFO: task can't die"), "hang"),
    (("INFO: rcu detected stall",), "rcu-stall"),
    (("BUG: soft lockup",), "soft-lockup"),
    (("BUG: hard lockup",), "hard-lockup"),
    (("kernel panic:", "unexpected kernel reboot", "panic:"), "panic"),
    (("BUG: unable to handle", "general protection fault", "unable to handle kernel",
      "stack segment fault", "divide error", "invalid opcode", "PANIC: double fault",
      "Internal error", "Unhandled fault", "Alignment trap"), "oops"),
    (("kernel BUG", "BUG:", "memory leak", "INFO:"), "bug"),
    (("WARNING",), "warning"),
)


def title_kind(title: str, type_: str) -> str:
    if title.startswith("BUG: using"):
        return "preempt"  # syzkaller files it under LOCKDEP; for us it is its own class
    if type_ == "LOCKDEP":
        return "lockdep"
    if type_ == "ATOMIC_SLEEP":
        return "atomic-sleep"
    for prefixes, kind in _KIND_TABLE:
        if title.startswith(prefixes):
            return kind
    return "bug"


def crash_type_name(type_: str) -> str:
    """The printable type: syzkaller prints the empty type as UNKNOWN."""
    return type_ or "UNKNOWN"
