"""The report table, part two: faults, panics, arch oopses, sanitizers.

See table.py for the generic BUG:/WARNING:/INFO: groups. Group order
matters when two headers occur in one line: earlier groups win.
"""
from __future__ import annotations

from .patterns import CALL_TRACE, PARSE, RIP, Format, Group, StackSpec, rx
from .table import GENERIC_GROUPS, fault_trace, trace

_ARM_UNABLE = Group("Unable to handle kernel", (
    Format(rx(r"Unable to handle kernel (paging request|NULL pointer dereference|access to user memory)"),
           fmt="BUG: unable to handle kernel {0} in {1}", alt=("bad-access in {1}",),
           stack=fault_trace(), kind="oops"),
    # Ours: arm64's other fault kinds, titled as the paging request they are
    # (syzkaller leaves them as the raw header line).
    Format(rx(r"Unable to handle kernel (?:execute from non-executable memory|write to read-only memory|"
              r"level [0-9]+ address size fault) at virtual address"),
           fmt="BUG: unable to handle kernel paging request in {0}", stack=fault_trace(), kind="oops"),
    # Ours: s390 names the faulting function in its PSW line.
    Format(rx(r"Unable to handle kernel pointer dereference in virtual kernel address space"),
           fmt="BUG: unable to handle kernel paging request in {0}",
           stack=StackSpec(parts=(rx(r"Krnl PSW : [0-9a-f]+ [0-9a-f]+ \({{FUNC}}"), CALL_TRACE, PARSE)),
           kind="oops"),
))

_KERNEL_PANIC = Group("Kernel panic", (
    # For stack corruption the kernel may fail to print a symbol or unwind.
    Format(rx(r"Kernel panic - not syncing: stack-protector:"),
           report=rx(r"Kernel panic - not syncing: stack-protector: Kernel stack is corrupted in: {{FUNC}}"),
           fmt="kernel panic: stack is corrupted in {0}", no_stack=True),
    Format(rx(r"Kernel panic - not syncing: stack-protector:"),
           report=rx(r"Kernel panic - not syncing: stack-protector: Kernel stack is corrupted in: [a-f0-9]+"),
           fmt="kernel panic: stack is corrupted in {0}", stack=trace("stack_chk")),
    Format(rx(r"Kernel panic - not syncing: corrupted stack end"),
           report=rx(r"Kernel panic - not syncing: corrupted stack end detected inside scheduler"),
           fmt="kernel panic: corrupted stack end in {0}",
           alt=("stack-overflow in {0}",), stack=trace("schedule", "retint_kernel", extractor="stall")),
    Format(rx(r"Kernel panic - not syncing: kernel stack overflow"), fmt="kernel stack overflow in {0}",
           alt=("stack-overflow in {0}",), stack=trace("bad_stack", extractor="stall")),
    Format(rx(r"Kernel panic - not syncing: Attempted to kill init!"),
           fmt="kernel panic: Attempted to kill init!"),
    Format(rx(r"Kernel panic - not syncing: Couldn't open N_TTY ldisc for [^ ]+ --- error -[0-9]+"),
           fmt="kernel panic: Couldn't open N_TTY ldisc"),
    # These are consequences: the cause was printed before (BUG, WARNING
    # with panic_on_warn, hung task, lockup). Seen alone, the cause is lost.
    Format(rx(r"Kernel panic - not syncing: Fatal exception"), fmt="kernel panic: Fatal exception",
           corrupted=True),
    Format(rx(r"Kernel panic - not syncing: (?:[a-zA-Z]+: )?panic_on_warn set"),
           fmt="kernel panic: panic_on_warn set",
           corrupted=True),
    Format(rx(r"Kernel panic - not syncing: hung_task: blocked tasks"),
           fmt="kernel panic: hung_task: blocked tasks", corrupted=True),
    Format(rx(r"Kernel panic - not syncing: (.*)"), fmt="kernel panic: {0}"),
), suppress=(rx(r"---\[ end Kernel panic"),))


def _simple(header: str, fmt: str, stack: StackSpec | None = None, kind: str = "oops",
            **kwargs) -> Group:
    return Group(header, (Format(rx(header), fmt=fmt, stack=stack, kind=kind, **kwargs),))


_GPF = Group("general protection fault", (Format(rx(r"general protection fault.*:"),
                                                 fmt="general protection fault in {0}",
                                                 stack=fault_trace(), kind="oops"),),
             # 'traps: prog[12] general protection fault ... error:0 in libc.so' is a user
             # segfault; ours: so is the older '... general protection fault ip:'.
             suppress=(rx(r"general protection fault .* error:\d+ in "), rx(r"general protection fault ip:")))
_STACK_SEGMENT = _simple("stack segment: ", "stack segment fault in {0}", fault_trace())
_DOUBLE_FAULT = _simple("PANIC: double fault", "PANIC: double fault in {0}",
                        StackSpec(parts=(RIP,)))

_KERNEL_BUG = Group("kernel BUG", (
    Format(rx(r"kernel BUG at mm/usercopy.c"), fmt="BUG: bad usercopy in {0}",
           stack=trace("usercopy", "__check"), kind="bug"),
    Format(rx(r"kernel BUG at lib/list_debug.c"), fmt="BUG: corrupted list in {0}",
           alt=("bad-access in {0}",), stack=trace(), kind="list-corruption"),
    # Lots of skb wrappers contain BUG_ON, but the bug is almost always in the caller.
    Format(rx(r"kernel BUG at (.*)"), fmt="kernel BUG in {1}", stack=fault_trace("^skb_"), kind="bug"),
))
_KERNEL_BUG_CAPS = Group("Kernel BUG", (Format(rx(r"Kernel BUG (.*)"), fmt="kernel BUG {0}",
                                               kind="bug"),))
_SLUB = Group("BUG kmalloc-", (Format(rx(r"BUG kmalloc-.*: Object already free"),
                                      fmt="BUG: Object already free", kind="bug"),))
_DIVIDE = _simple("divide error: ", "divide error in {0}", StackSpec(parts=(RIP,)))
# A misspelling of the above since 9d06c4027f21 ("x86/entry: Convert Divide Error to IDTENTRY").
_DIVIDE_ = _simple("divide_error: ", "divide error in {0}", StackSpec(parts=(RIP,)))
_INVALID_OP = _simple("invalid opcode: ", "invalid opcode in {0}", StackSpec(parts=(RIP,)))
# x86 hit a breakpoint instruction in kernel text ('int3: 0000 [#1]'): text
# patching (jump labels, static calls, ftrace) gone wrong. Its type stays
# UNKNOWN (no row in titles.py): no stored syzkaller source says which it is.
_INT3 = _simple("int3: ", "int3 in {0}", fault_trace())
_RUST = Group("rust_kernel: panicked", (
    Format(rx(r"rust_kernel: panicked"), report=rx(r"rust_kernel: panicked at [^\n]*?\n(.+?)\n"),
           fmt="{0} in {1}", stack=trace(r"__rustc::rust_begin_unwind"), kind="panic"),))

_UBSAN = Group("UBSAN:", (
    Format(rx(r"UBSAN:"), report=rx(r"UBSAN: Undefined behaviour in"),
           fmt="UBSAN: undefined-behaviour in {0}", stack=trace("ubsan", "overflow")),
    Format(rx(r"UBSAN: array-index-out-of-bounds in"), fmt="UBSAN: array-index-out-of-bounds in {0}",
           alt=("bad-access in {0}",), stack=trace("ubsan", "overflow")),
    Format(rx(r"UBSAN:"), report=rx(r"UBSAN: (.*?) in"), fmt="UBSAN: {0} in {1}",
           stack=trace("ubsan", "overflow")),
))

# arm/arm64 oopses: the first line names the fault class.
_ARM_FAULTS = (
    Group("Internal error:", (
        # Ours: arm's BUG() is 'Internal error: Oops - BUG' after 'kernel BUG at'.
        Format(rx(r"Internal error: Oops - BUG"), report=rx(r"kernel BUG at lib/list_debug.c"),
               fmt="BUG: corrupted list in {0}", stack=fault_trace(), kind="list-corruption"),
        Format(rx(r"Internal error: Oops - BUG"), fmt="kernel BUG in {0}", stack=fault_trace(),
               kind="bug"),
        Format(rx(r"Internal error:"), fmt="Internal error in {0}", alt=("bad-access in {0}",),
               stack=fault_trace(), kind="oops"),
    )),
    _simple("Unhandled fault:", "Unhandled fault in {0}", fault_trace(), alt=("bad-access in {0}",)),
    _simple("Alignment trap:", "Alignment trap in {0}", fault_trace()),
)

# Ours: the NMI watchdog's hard lockup, which syzkaller (softlockup_panic)
# does not meet; titled like the soft lockup.
_HARD_LOCKUP = Group("Watchdog detected hard LOCKUP", (
    Format(rx(r"Watchdog detected hard LOCKUP on cpu"), fmt="BUG: hard lockup in {0}",
           stack=fault_trace(extractor="stall"), kind="hard-lockup"),
))

_MISC = (
    # Fuzzers echo boot messages inside mount options; ours: only at the
    # start of a line (syzkaller anchors the title regex instead).
    Group("Booting the kernel.", (Format(rx(r"Booting the kernel"), fmt="unexpected kernel reboot",
                                         no_stack=True, kind="panic"),),
          suppress=(rx(r"Parsing ELF|Decompressing Linux|Unknown parameter '"),
                    rx(r"^(?!\s*Booting the kernel)"))),
    Group("VFS: Close: file count is 0", (
        Format(rx(r"VFS: Close: file count is 0"), no_stack=True, kind="bug",
               fmt="VFS: Close: file count is zero (use-after-free)"),)),
    Group("VFS: Busy inodes after unmount", (
        Format(rx(r"VFS: Busy inodes after unmount"), no_stack=True, kind="bug",
               fmt="VFS: Busy inodes after unmount (use-after-free)"),)),
    Group("unregister_netdevice: waiting for", (
        Format(rx(r"unregister_netdevice: waiting for (?:.*) to become free"),
               fmt="unregister_netdevice: waiting for DEV to become free", no_stack=True,
               kind="hang"),)),
    Group("trusty: panic", (
        Format(rx(r"trusty: panic.* ASSERT FAILED"),
               report=rx(r"trusty: panic \(.*?\):(?: DEBUG)? ASSERT FAILED at \(.*?\): (.+)"),
               fmt="trusty: ASSERT FAILED: {0}", no_stack=True, kind="panic"),
        Format(rx(r"trusty: panic.* ASSERT FAILED.*: *(.*)"), fmt="trusty: ASSERT FAILED: {0}",
               corrupted=True, kind="panic"),
        Format(rx(r"trusty: panic"), report=rx(r"trusty: panic \(.*?\): (.+)"),
               fmt="trusty: panic: {0}", no_stack=True, kind="panic"),
    )),
)

# Produced by syzkaller's own executor and by Go programs: kept so that a
# fuzzing log mixed into ours is still classified, but never primary
# kernel findings (kind "panic" is the closest coarse class).
_COMMON = (
    Group("SYZFAIL:", (Format(rx(r"SYZFAIL:(.*)"), fmt="SYZFAIL:{0}", no_stack=True, kind="panic"),)),
    Group("SYZFATAL:", (Format(rx(r"SYZFATAL:(.*)"), fmt="SYZFATAL:{0}", no_stack=True,
                               kind="panic"),)),
    # A Go program's runtime crash. Ours: only at the start of a line and
    # only 'runtime' ones (syzkaller takes any 'fatal error:', which drivers print).
    Group("fatal error: runtime", (Format(rx(r"fatal error: runtime"), fmt="go runtime error",
                                          no_stack=True, kind="panic"),),
          suppress=(rx(r"^(?!fatal error: )"),)),
    Group("panic:", (
        Format(rx(r"panic: Sentry detected .* stuck task"), fmt="panic: Sentry detected stuck tasks",
               no_stack=True, kind="panic"),
        Format(rx(r"panic:(.*)"), fmt="panic:{0}", no_stack=True, kind="panic"),
    # Go prints 'panic: ' at the start of a line; elsewhere it is prose.
    ), suppress=(rx("_panic:"), rx("xlog_status:"), rx(r"ddb\.onpanic:"), rx("evtlog_status:"),
                 rx(r"^(?!panic:)"))),
)

GROUPS: tuple[Group, ...] = (
    GENERIC_GROUPS
    + (_ARM_UNABLE, _GPF, _STACK_SEGMENT, _KERNEL_PANIC, _DOUBLE_FAULT, _RUST, _KERNEL_BUG,
       _KERNEL_BUG_CAPS, _SLUB, _DIVIDE, _DIVIDE_, _INVALID_OP, _INT3, _UBSAN)
    + _ARM_FAULTS + (_HARD_LOCKUP,) + _MISC + _COMMON
)

# Headers that continue a report already open rather than start a new one:
# x86 prints 'invalid opcode' right after 'kernel BUG at', a double fault
# can come from inside the fault handler, and the netdev refcount wait
# repeats while a hang is already being reported.
CONTINUATION_HEADERS = (
    rx(r"invalid opcode: 0000"),
    # arm/arm64 follow the first fault line with 'Internal error: Oops...'.
    rx(r"Internal error:"),
    rx(r"unregister_netdevice: waiting for"),
    rx(r"PANIC: double fault"),
)
# Messages that carry a stack but are not bugs; inside another report
# they mean the report's stack may be someone else's.
INFO_WITH_STACK = ("vmalloc: allocation failure:", "FAULT_INJECTION: forcing a failure",
                   "FAULT_FLAG_ALLOW_RETRY missing")
