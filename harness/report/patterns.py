"""Regex building blocks and the data types the report table is made of.

The table (table.py) describes each report kind as data: which header
substring opens it, which regex recognises a title, how the title is
formatted, and how the "guilty" frame is found in the stack. This module
holds the shared vocabulary: the {{FUNC}}/{{PC}}/{{SRC}} macros and the
list of frames that never name a culprit (locking, printk, sanitizer
and generic helpers).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

_MACROS = {
    "{{ADDR}}": r"0x[0-9a-f]+",
    # A program counter as x86/arm print it: [<ffffffff81000000>] or [<(null)>].
    "{{PC}}": r"\[\<?(?:0x)?[0-9a-f]+\>?\]",
    # A function name followed by '+0x..' or a '.isra.0'-style suffix.
    "{{FUNC}}": r"([a-zA-Z0-9_]+)(?:\.|\+)",
    "{{SRC}}": r"([a-zA-Z0-9-_/.]+\.[a-z]+:[0-9]+)",
}


def rx(pattern: str) -> re.Pattern:
    """Compile a pattern after expanding the table's macros."""
    for name, value in _MACROS.items():
        pattern = pattern.replace(name, value)
    return re.compile(pattern)


class _ParseStack:
    """Marker in StackSpec.parts: parse a stack trace from here on."""

    def __repr__(self) -> str:
        return "PARSE"


PARSE = _ParseStack()
Part = re.Pattern | _ParseStack


@dataclass(frozen=True)
class StackSpec:
    """How to find the frame a title names.

    `parts` are applied in order to the report's lines: a regex advances to
    the first line it matches (capturing a frame if it has a group), PARSE
    collects frames until the next stack keyword. `alt_parts` is tried when
    `parts` yields nothing. `skip` adds substrings to the global skip list.
    `extractor` picks a frame from the list: "" (first), "stall", "hang".
    """

    parts: tuple[Part, ...]
    alt_parts: tuple[Part, ...] = ()
    last_resort: tuple[Part, ...] = ()  # ours, beyond syzkaller's two tries
    final_parts: tuple[Part, ...] = ()  # ours: tried after last_resort
    skip: tuple[str, ...] = ()
    extractor: str = ""


@dataclass(frozen=True)
class Format:
    """One way a report of a header group can look."""

    title: re.Pattern
    fmt: str  # str.format template; {0}.. are captures, then the frame
    report: re.Pattern | None = None  # must also match, else corrupted
    stack: StackSpec | None = None
    no_stack: bool = False  # report legitimately has no 'Call Trace'
    corrupted: bool = False  # a match means the header is mangled
    kind: str = ""  # overrides the kind derived from the title
    alt: tuple[str, ...] = ()


@dataclass(frozen=True)
class Group:
    """All formats that share one header substring (syzkaller's 'oops')."""

    header: str
    formats: tuple[Format, ...]
    suppress: tuple[re.Pattern, ...] = field(default_factory=tuple)


# Frame lines as printed by x86, arm64, riscv (`func+0x1/0x2`), with up to
# two leading PCs (arm32 / old x86 `[<...>] func+...`).
FRAME_RE = rx(r"^ *(?:{{PC}} ){0,2}{{FUNC}}")
FRAME_LINE_RE = re.compile(
    r"^ *(?:\[<?(?:[0-9a-f]+)>?\] ?){0,2}[ \t]+(?:[0-9]+:)?([a-zA-Z0-9_.]+)\+0x([0-9a-f]+)/0x([0-9a-f]+)"
)
# The faulting instruction line: x86 `RIP: 0010:func+0x..`, old `IP: [<..>] func`.
RIP_FRAME = (
    r"N?IP:? (?:(?:[0-9]+:)?(?:{{PC}} +){0,2}{{FUNC}}|[0-9]+:0x[0-9a-f]+|"
    r"(?:[0-9]+:)?{{PC}} +\[< *\(null\)>\] +\(null\)|[0-9]+: +\(null\))"
)
RIP = rx(RIP_FRAME)
# arm/arm64/riscv name the faulting function this way.
PC_IS_AT = rx(r"(?:PC is at |pc : |epc : |NIP \[[0-9a-f]+\] |Krnl PSW : [0-9a-f]+ [0-9a-f]+ \(){{FUNC}}")

# Lines that start a stack trace (a frame list follows).
STACK_START = (
    re.compile(r"Call Trace"),
    re.compile(r"Call trace:"),
    re.compile(r"Allocated:"),
    re.compile(r"Allocated by task [0-9]+:"),
    re.compile(r"Freed:"),
    re.compile(r"Freed by task [0-9]+:"),
    re.compile(r"[^k] backtrace:"),  # but not lockdep's 'stack backtrace:'
)

# Fault injection stacks get mixed into real reports; seeing one there
# means the frame we would pick may belong to the wrong stack.
CORRUPTING_LINES = (
    re.compile(r"^( \[\<?(?:0x)?[0-9a-f]+\>?\])? should_fail(slab)?(\.[a-z0-9.]+)?\+0x"),
)

# Frames that are never the culprit: the reporting machinery itself,
# locking primitives, printk/string helpers, sanitizer runtimes, and
# generic library and device-core helpers. Matched as regex searches.
SKIP_FRAMES = (
    "__sanitizer", "__asan", "kasan", "__msan", "kmsan", "kcsan_", "__tsan",
    "check_memory_region", "read_word_at_a_time", "print_address_description",
    "panic", "invalid_op", "report_bug", "fixup_bug", "do_error", "_trap",
    "dump_stack", "warn_slowpath", "warn_alloc", "__warn", "debug_object",
    "timer_is_static_object", "work_is_static_object", "lockdep",
    "perf_trace", "lock_acquire", "lock_release", "lock_class",
    "reacquire_held_locks", "spin_lock", "spin_trylock", "spin_unlock",
    "raw_read_lock", "raw_read_trylock", "raw_write_lock", "raw_write_trylock",
    "down", "down_read", "down_write", "down_read_trylock", "down_write_trylock",
    "up_read", "up_write", "mutex_lock", "mutex_trylock", "mutex_unlock",
    "mutex_remove_waiter", "osq_lock", "osq_unlock", "__wake_up",
    "refcount_add", "refcount_sub", "refcount_inc", "refcount_dec",
    "refcount_set", "refcount_read", "memcpy", "memcmp", "memset", "memchr",
    "memmove", "strcmp", "strncmp", "strcpy", "strlcpy", "strncpy", "strscpy",
    "strlen", "strnstr", "strnlen", "strchr", "copy_to_user", "copy_from_user",
    "put_user", "get_user", "might_fault", "might_sleep", "list_add", "list_del",
    "list_replace", "list_move", "list_splice", "_indirect_thunk_", "string",
    "pointer", "snprintf", "scnprintf", "kasprintf", "kvasprintf", "printk",
    "va_format", "dev_info", "dev_notice", "dev_warn", "dev_err", "dev_alert",
    "dev_crit", "dev_emerg", "program_check_exception", "program_check_common",
    "del_timer", "flush_work", "__cancel_work_timer", "cancel_work_sync",
    "try_to_grab_pending", "flush_workqueue", "drain_workqueue",
    "destroy_workqueue", "finish_wait", "kthread_stop", "kobject_del",
    "kobject_put", "kobject_uevent_env", "add_uevent_var", "get_device_parent",
    "device_add", "device_del", "device_unregister", "device_destroy",
    "device_release", "devres_release_all", "hwrng_unregister",
    "i2c_del_adapter", "__unregister_client", "device_for_each_child",
    "rollback_registered", "unregister_netdev", "sysfs_remove",
    "device_remove_file", "tty_unregister_device", "dummy_urb_enqueue",
    "usb_kill_urb", "usb_kill_anchored_urbs", "usb_control_msg",
    "usb_hcd_submit_urb", "usb_submit_urb", "^complete$", "wait_for_completion",
    "^kfree$", "kfree_skb", "readb$", "readw$", "readl$", "readq$", "__raw_read",
    "__raw_write", "^ubsan_", "__ubsan", "^rust_helper_", "stack_trace_save",
    "^el1_", "^el0_", "^do_mem_abort", "^__do_kernel_fault", "^die$",
    "^arm64_notify_die", "^show_stack", "^dump_backtrace", "^do_bad_area",
    "^do_translation_fault", "^do_page_fault", "^do_alignment",
    "^__dabt_svc", "^do_DataAbort", "^__bug$", "^bug_handler", "^do_undefinstr",
    "^handle_exception", "^do_trap_", "^_raw_", "^queued_", "^do_raw_",
    # Generic library code seen at the top of stacks that are not its fault.
    "^rb_", "^__rb_", "^xas_", "^crc_", "^crc[0-9]", "hex_dump", "^klist_", "^mutex_",
    "^__mutex_", "_atomic_dec_and_lock", "print_report", "stack_trace_", "do_tag_check_fault",
    "__hwasan", "^kmem_cache_", "^__kmem_cache_", "^kmalloc", "^__kmalloc", "^slab_alloc",
    "^__slab_alloc", "^skb_put$", "__phys_addr", "^folio_unlock", "^unlock_page", "drop_nlink",
    "^clear_nlink", "^inc_nlink", "ref_tracker", "^(?:__)?alloc_pages", "^__alloc_frozen_pages",
    "^__get_free_pages", "^cleanup_srcu_struct", "^put_device", "^rhashtable_",
    "^__rhashtable_", "assertfail", "walk_stackframe", "trace_hardirqs", "might_resched",
    "^logic_(?:in|out)", "lock_timer_base", "local_bh_enable", "memdup_user",
    "alloc_page_interleave", "^kvmalloc", "^__kvmalloc", "kmalloc_large", "arch_stack_walk",
    "^strstr$", "^aes_encrypt", "^__mod_timer", "timer_delete", "^el1h_", "^el0t_",
    "__read_once_word_nocheck", "^__queue_work", "^queue_work_on", "^krealloc", "^__krealloc",
    "__seqprop", "^seqcount_", "^insert_work", "queue_delayed_work", "^dput$", "sk_stop_timer", "^aes", "^mark_lock", "^mark_usage", "^mark_held_locks", "^test_and_(?:set|clear)_bit", "^find_next_bit",
)

# Entry points deep in a stalled or looping stack that identify what the
# CPU was doing; the frame *above* the first one is the title's culprit.
STALL_ANCHORS = tuple(re.compile(p) for p in (
    "process_one_work", "do_syscall_", "do_fast_syscall_", "sysenter_dispatch",
    "tracesys_phase2", "netif_receive_skb", "do_softirq", "call_timer_fn",
    "_run_timers", "run_timer_softirq", "run_ksoftirqd", "smpboot_thread_fn",
    "kthread", "start_secondary", "cpu_startup_entry", "ret_from_fork", "tasklet_action",
    "__run_hrtimer",
    "vfs_write", "vfs_read", "vfs_iter_read", "vfs_iter_write", "do_iter_read",
    "do_iter_write", "vfs_ioctl", "ksys_ioctl", "compat_ioctl",
    "compat_sys_ioctl", "blkdev_driver_ioctl", "blkdev_ioctl",
    "^call_read_iter", "^call_write_iter", "do_iter_readv_writev", "^call_mmap",
    "mmap_region", "do_mmap", "do_dentry_open", "vfs_open", "^sock_sendmsg",
    "^sock_recvmsg", "^sock_release", "^__sock_release", "__sys_setsockopt",
    "kernel_setsockopt", "sock_common_setsockopt", "__sys_listen",
    "kernel_listen", "sk_common_release", "^sock_mmap", "__sys_accept",
    "kernel_accept", "^sock_do_ioctl", "^sock_ioctl", "^compat_sock_ioctl",
    "^nfnetlink_rcv_msg", "^rtnetlink_rcv_msg",
    "^(compat_)?(SYSC|SyS|__sys|___sys|__do_sys|__se_sys|__x64_sys|sys)_(socketpair|connect|ioctl)",
    "__do_fault", "handle_mm_fault", "do_page_fault", "^page_fault$", "__fput",
    "task_work_run", "exit_to_usermode", "exit_to_user_mode", "smp_call_function",
))

# Stripped from every frame name: per-arch syscall wrapper prefixes.
FRAME_STRIP_PREFIXES = ("__x64_", "__ia32_", "__arm64_", "__riscv_", "__s390x_", "__se_sys_")
# Syscall wrappers whose prefix differs per arch and kernel version.
SYSCALL_PREFIXES = ("__x64_", "__ia32_sys_", "SYSC_", "SyS_", "compat_SYSC_",
                    "compat_SyS_", "__arm64_", "__riscv_", "__s390x_", "__s390_")
