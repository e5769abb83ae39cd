"""The report table: every kind of kernel report we recognise, as data.

Each Group is opened by a header substring found anywhere in a console
line; its Formats are tried against the report text and the one whose
title regex matches earliest wins. Titles follow syzkaller's naming so
that our results can be compared with (and deduplicated against) public
syzbot reports. Formats are listed most specific first within a group.
Groups outside the generic BUG:/WARNING:/INFO: ones live in table_oops.py.
"""
from __future__ import annotations

from .patterns import PARSE, PC_IS_AT, RIP_FRAME, Format, Group, StackSpec, rx

CALL_TRACE = rx(r"Call (?:T|t)race:|Backtrace:")


def trace(*skip: str, extractor: str = "") -> StackSpec:
    """The common case: the first interesting frame after 'Call Trace:'."""
    return StackSpec(parts=(CALL_TRACE, PARSE), skip=skip, extractor=extractor)


def fault_trace(*skip: str, extractor: str = "") -> StackSpec:
    """Faults: the faulting function (RIP / pc), else the call trace."""
    return StackSpec(parts=(rx(RIP_FRAME), CALL_TRACE, PARSE),
                     alt_parts=(PC_IS_AT, CALL_TRACE, PARSE),
                     skip=skip, extractor=extractor)


def warning_trace(*skip: str) -> StackSpec:
    """WARNINGs trap: the stack starts at the RIP line (x86), the
    '--- interrupt:' line (powerpc), or plainly after 'Call Trace:'."""
    return StackSpec(
        parts=(rx("(?:" + RIP_FRAME + r"|--- interrupt: [0-9]+ at {{FUNC}}|pc : {{FUNC}})"), PARSE),
        alt_parts=(CALL_TRACE, PARSE),
        skip=skip,
    )


def new_warning_trace(*skip: str) -> StackSpec:
    """WARNINGs since 6.17 ('WARNING: file.c:12 at func'): the first frame
    of the call trace, else the RIP line as for older WARNINGs."""
    old = warning_trace(*skip)
    return StackSpec(parts=(CALL_TRACE, PARSE), alt_parts=old.parts, skip=skip)


def _lockdep(header: str, anchor: str, fmt: str = "possible deadlock in {0}") -> Format:
    """A lockdep report whose culprit follows `anchor` as '... at: func'."""
    return Format(
        title=rx(header),
        report=rx(header + r"(?:.*\n)+?.*" + anchor + r"(?:.*\n)+?.*at: (?:{{PC}} +)?{{FUNC}}"),
        fmt=fmt,
        kind="lockdep",
    )


_BUG = Group("BUG:", (
    Format(rx(r"BUG: KASAN:"),
           report=rx(r"BUG: KASAN: ([a-z\-]+) in {{FUNC}}(?:.*\n)+?.*(Read|Write) (?:of size|at addr) (?:[0-9a-f]+)"),
           fmt="KASAN: {0} {2} in {3}",
           stack=StackSpec(parts=(rx(r"BUG: KASAN: (?:[a-z\-]+) in {{FUNC}}"), CALL_TRACE, PARSE))),
    Format(rx(r"BUG: KASAN:"),
           report=rx(r"BUG: KASAN: (?:double-free or invalid-free|invalid-free|double-free) in {{FUNC}}"),
           fmt="KASAN: invalid-free in {1}",
           stack=StackSpec(parts=(rx(r"BUG: KASAN: (?:double-free or invalid-free|invalid-free|double-free) in {{FUNC}}"),
                                  CALL_TRACE, PARSE),
                           skip=("kmem_", "slab_", "kfree", "vunmap", "vfree"))),
    Format(rx(r"BUG: KASAN: ([a-z\-]+) on address(?:.*\n)+?.*(Read|Write) of size ([0-9]+)"),
           fmt="KASAN: {0} {1}"),
    Format(rx(r"BUG: KASAN: (.*)"), fmt="KASAN: {0}", corrupted=True),
    Format(rx(r"BUG: KFENCE: (use-after-free|out-of-bounds|invalid) (read|write)"),
           report=rx(r"BUG: KFENCE: ([a-z\-]+) (read|write) in {{FUNC}}"),
           fmt="KFENCE: {0} {1} in {3}",
           stack=StackSpec(parts=(rx(r"(?:Use-after-free|Out-of-bounds|Invalid) (?:read|write) at"), PARSE),
                           skip=("kfence",)), no_stack=True),
    Format(rx(r"BUG: KFENCE: (memory corruption|invalid free)"),
           fmt="KFENCE: {0} in {1}",
           stack=StackSpec(parts=(rx(r"(?:Corrupted memory|Invalid free) .*at"), PARSE),
                           skip=("kfence", "kfree", "kmem_", "slab_")), no_stack=True),
    Format(rx(r"BUG: KMSAN: kernel-usb-infoleak"),
           report=rx(r"BUG: KMSAN: kernel-usb-infoleak in {{FUNC}}"),
           fmt="KMSAN: kernel-usb-infoleak in {1}",
           stack=StackSpec(parts=(rx(r"BUG: KMSAN:"), PARSE), alt_parts=(CALL_TRACE, PARSE),
                           skip=("usb_submit_urb", "usb_start_wait_urb", "usb_bulk_msg",
                                 "usb_interrupt_msg", "usb_control_msg"))),
    # KMSAN prints the stack right under its header, without 'Call Trace:'.
    Format(rx(r"BUG: KMSAN:"), report=rx(r"BUG: KMSAN: ([a-z\-]+) in {{FUNC}}"),
           fmt="KMSAN: {0} in {2}",
           stack=StackSpec(parts=(rx(r"BUG: KMSAN:"), PARSE), alt_parts=(CALL_TRACE, PARSE),
                           skip=("copy_to_user", "copyout", "copy_to_iter", "instrument_copy",
                                 "copy_page_to_iter", "copy_mc_to_user", "_copy_to_user"))),
    Format(rx(r"BUG: KCSAN:"), report=rx(r"BUG: KCSAN: (.*)"), fmt="KCSAN: {0}", no_stack=True),
    Format(rx(r"BUG: (?:unable to handle kernel paging request|unable to handle page fault for address|Unable to handle kernel data access)"),
           fmt="BUG: unable to handle kernel paging request in {0}", stack=fault_trace()),
    Format(rx(r"BUG: (?:unable to handle kernel NULL pointer dereference|kernel NULL pointer dereference|Kernel NULL pointer dereference)"),
           fmt="BUG: unable to handle kernel NULL pointer dereference in {0}", stack=fault_trace()),
    Format(rx(r"BUG: (?:unable to handle kernel access to user memory)"),
           fmt="BUG: unable to handle kernel access to user memory in {0}", stack=fault_trace()),
    # powerpc's other bad_page_fault() kinds (TRAP 0x400/0x480, 0x600).
    Format(rx(r"BUG: Unable to handle kernel (instruction fetch|unaligned access)"),
           fmt="BUG: unable to handle kernel {0} in {1}", stack=fault_trace()),
    # Printed as two printk()s; the second half may be lost.
    Format(rx(r"BUG: (?:unable to handle kernel|Unable to handle kernel)"),
           fmt="BUG: unable to handle kernel", corrupted=True),
    Format(rx(r"BUG: (spinlock|rwlock) (lockup suspected|already unlocked|recursion|bad magic|wrong owner|wrong CPU|cpu recursion)"),
           fmt="BUG: {0} {1} in {2}", stack=trace("spin_", "_lock", "_unlock"), kind="lockdep"),
    Format(rx(r"BUG: soft lockup"), fmt="BUG: soft lockup in {0}",
           stack=fault_trace(extractor="stall")),
    Format(rx(r"BUG: .*still has locks held!"),
           report=rx(r"BUG: .*still has locks held!(?:.*\n)+?.*{{PC}} +{{FUNC}}"),
           fmt="BUG: still has locks held in {0}", kind="lockdep"),
    Format(rx(r"BUG: lock held when returning to user space"),
           report=rx(r"BUG: lock held when returning to user space(?:.*\n)+?.*leaving the kernel with locks still held(?:.*\n)+?.*at: (?:{{PC}} +)?{{FUNC}}"),
           fmt="BUG: lock held when returning to user space in {0}", no_stack=True, kind="lockdep"),
    Format(rx(r"BUG: bad unlock balance detected!"),
           report=rx(r"BUG: bad unlock balance detected!(?:.*\n){0,15}?.*is trying to release lock(?:.*\n){0,15}?.*{{PC}} +{{FUNC}}"),
           fmt="BUG: bad unlock balance in {0}", kind="lockdep"),
    Format(rx(r"BUG: held lock freed!"),
           report=rx(r"BUG: held lock freed!(?:.*\n)+?.*{{PC}} +{{FUNC}}"),
           fmt="BUG: held lock freed in {0}", kind="lockdep"),
    Format(rx(r"BUG: Invalid wait context"), fmt="BUG: Invalid wait context in {0}",
           stack=trace(), kind="lockdep"),
    Format(rx(r"BUG: MAX_(LOCKDEP_[A-Z_]+|STACK_TRACE_ENTRIES|LOCK_DEPTH) too low!"),
           fmt="BUG: MAX_{0} too low!", no_stack=True, kind="lockdep"),
    Format(rx(r"BUG: (?:looking up invalid subclass|key [0-9a-f]+ has not been registered|trying to register non-static key)"),
           fmt="BUG: lockdep bug in {0}", stack=trace("stack", "lock", "IRQ"), kind="lockdep"),
    Format(rx(r"BUG: Bad rss-counter state"), fmt="BUG: Bad rss-counter state", no_stack=True),
    Format(rx(r"BUG: non-zero nr_ptes on freeing mm"), fmt="BUG: non-zero nr_ptes on freeing mm", no_stack=True),
    Format(rx(r"BUG: non-zero nr_pmds on freeing mm"), fmt="BUG: non-zero nr_pmds on freeing mm", no_stack=True),
    Format(rx(r"BUG: Dentry .* still in use \([0-9]+\) \[(unmount) of ([^\]]+)\]"),
           fmt="BUG: Dentry still in use in {0}", alt=("BUG: Dentry still in use [{0} of {1}]",)),
    Format(rx(r"BUG: Bad page state"), fmt="BUG: Bad page state"),
    Format(rx(r"BUG: Bad page map"), fmt="BUG: Bad page map"),
    Format(rx(r"BUG: workqueue lockup"), fmt="BUG: workqueue lockup", no_stack=True, kind="hang"),
    Format(rx(r"BUG: sleeping function called from invalid context at (.*)"),
           fmt="BUG: sleeping function called from invalid context in {1}", stack=trace()),
    Format(rx(r"BUG: scheduling while atomic"), fmt="BUG: scheduling while atomic in {0}",
           stack=trace("schedule", "preempt", "_cond_resched", "^__might_resched", "^msleep$",
                       "^usleep_range", "^wait_for", "^down$", "^mutex_lock")),
    Format(rx(r"BUG: using ([a-z_]+)\(\) in preemptible"),
           fmt="BUG: using {0}() in preemptible code in {1}",
           stack=trace("dump_stack", "preemption", "preempt", "debug_", "processor_id", "this_cpu")),
    Format(rx(r"BUG: workqueue leaked lock or atomic"),
           report=rx(r"BUG: workqueue leaked lock or atomic(?:.*\n)+?.*last function: ([a-zA-Z0-9_]+)\n"),
           fmt="BUG: workqueue leaked lock or atomic in {0}", no_stack=True, kind="lockdep"),
    Format(rx(r"BUG: memory leak"), fmt="memory leak in {0}",
           stack=StackSpec(parts=(rx(r"backtrace"), PARSE),
                           skip=("kmemleak", "kmalloc", "kcalloc", "kzalloc", "vmalloc", "mmap",
                                 "kmem", "slab", "alloc", "create_object", "idr_get",
                                 "list_lru_init", "kasprintf", "kvasprintf", "pcpu_create",
                                 "strdup", "strndup", "memdup"))),
    Format(rx(r"BUG: (?:TASK |IRQ )?stack guard page was hit at"), fmt="BUG: stack guard page was hit in {0}",
           stack=StackSpec(parts=(rx(RIP_FRAME),)), no_stack=True),
    Format(rx(r"BUG:\s*(?:\n|$)"), fmt="BUG: corrupted", corrupted=True),
), suppress=(rx("ODEBUG:"), rx("Boot_DEBUG:"), rx("xlog_status:"), rx("DEBUG:"),
             rx("BUG: no syscalls can create resource")))

_WARNING = Group("WARNING:", (
    Format(rx(r"WARNING: .*lib/debugobjects\.c.* (?:debug_print|debug_check)"),
           fmt="WARNING: ODEBUG bug in {0}",
           stack=warning_trace("debug_", "rcu", "hrtimer_", "timer_", "work_", "percpu_", "kmem_",
                               "slab_", "kfree", "vunmap", "vfree", "__free_", "debug_check",
                               "kobject_")),
    Format(rx(r"WARNING: .*mm/usercopy\.c.* usercopy_warn"), fmt="WARNING: bad usercopy in {0}",
           stack=warning_trace("usercopy", "__check")),
    Format(rx(r"WARNING: .*lib/kobject\.c.* kobject_"), fmt="WARNING: kobject bug in {0}",
           stack=warning_trace("kobject_")),
    Format(rx(r"WARNING: .*fs/proc/generic\.c.* proc_register"),
           fmt="WARNING: proc registration bug in {0}", stack=warning_trace("proc_")),
    Format(rx(r"WARNING: .*lib/refcount\.c.*(?: refcount_| at )"), fmt="WARNING: refcount bug in {0}",
           stack=warning_trace("refcount", "kobject_"), kind="refcount"),
    Format(rx(r"WARNING: .*lib/list_debug\.c.*(?: __list_| at )"), fmt="BUG: corrupted list in {0}",
           stack=warning_trace("__list_", "list_", "kobject_"), kind="list-corruption"),
    Format(rx(r"WARNING: .*kernel/locking/lockdep\.c.*(?:lock_| at )"), fmt="WARNING: locking bug in {0}",
           stack=warning_trace("lock_sock", "release_sock"), kind="lockdep"),
    Format(rx(r"WARNING: lock held when returning to user space"),
           report=rx(r"WARNING: lock held when returning to user space(?:.*\n)+?.*leaving the kernel with locks still held(?:.*\n)+?.*at: (?:{{PC}} +)?{{FUNC}}"),
           fmt="WARNING: lock held when returning to user space in {0}", no_stack=True, kind="lockdep"),
    Format(rx(r"WARNING: .*mm/vmalloc\.c.* __vmalloc_node"), fmt="WARNING: zero-size vmalloc in {0}",
           stack=warning_trace("vmalloc", "vzalloc", "kvmalloc", "kmalloc", "kzalloc")),
    Format(rx(r"WARNING: .*mm/.*\.c.* k?.?malloc"), fmt="WARNING: kmalloc bug in {0}",
           stack=warning_trace("kmalloc", "kcalloc", "kzalloc", "krealloc", "vmalloc", "slab", "kmem")),
    Format(rx(r"WARNING: .* usb_submit_urb"), fmt="WARNING in {0}/usb_submit_urb",
           stack=warning_trace("usb_submit_urb", "usb_start_wait_urb", "usb_bulk_msg",
                               "usb_interrupt_msg", "usb_control_msg")),
    Format(rx(r"WARNING: .* at kernel/locking/{{SRC}} {{FUNC}}"), fmt="WARNING in {2}",
           stack=warning_trace(), kind="lockdep"),
    Format(rx(r"WARNING: .* at {{SRC}} {{FUNC}}"), fmt="WARNING in {2}", stack=warning_trace()),
    # Since 6.17: 'WARNING: mm/foo.c:12 at func+0x1/0x2, CPU#0: comm/pid'.
    # Its Call Trace starts at the caller of the warning function.
    Format(rx(r"WARNING: kernel/locking/{{SRC}} at "), fmt="WARNING in {1}",
           stack=new_warning_trace(), kind="lockdep"),
    # ... unless the kernel could not name the function ('at 0x0').
    Format(rx(r"WARNING: {{SRC}} at 0x0,"), fmt="WARNING in {1}", stack=warning_trace()),
    Format(rx(r"WARNING: {{SRC}} at "), fmt="WARNING in {1}", stack=new_warning_trace()),
    Format(rx(r"WARNING: possible circular locking dependency detected"),
           report=rx(r"WARNING: possible circular locking dependency detected(?:.*\n)+?.*is trying to acquire lock"),
           fmt="possible deadlock in {0}",
           stack=StackSpec(parts=(rx(r"at: (?:{{PC}} +)?{{FUNC}}"), rx(r"at: (?:{{PC}} +)?{{FUNC}}"), PARSE),
                           skip=("process_one_work", "flush_workqueue", "drain_workqueue",
                                 "destroy_workqueue")),
           kind="lockdep"),
    _lockdep(r"WARNING: possible irq lock inversion dependency detected", "just changed the state of lock"),
    _lockdep(r"WARNING: [A-Z]+-safe -> [A-Z]+-unsafe lock order detected", "is trying to acquire"),
    _lockdep(r"WARNING: possible recursive locking detected", "is trying to acquire lock"),
    _lockdep(r"WARNING: inconsistent lock state", "takes", "inconsistent lock state in {0}"),
    Format(rx(r"WARNING: suspicious RCU usage"),
           report=rx(r"WARNING: suspicious RCU usage(?:.*\n)+?.*?{{SRC}}"),
           fmt="WARNING: suspicious RCU usage in {1}",
           stack=trace("rcu", "kmem", "slab", "kmalloc", "vmalloc", "kcalloc", "kzalloc"),
           kind="lockdep"),
    Format(rx(r"WARNING: kernel stack regs at [0-9a-f]+ in [^ ]* has bad '([^']+)' value"),
           fmt="WARNING: kernel stack regs has bad '{0}' value", no_stack=True),
    Format(rx(r"WARNING: kernel stack frame pointer at [0-9a-f]+ in [^ ]* has bad value"),
           fmt="WARNING: kernel stack frame pointer has bad value", no_stack=True),
    Format(rx(r"WARNING: bad unlock balance detected!"),
           report=rx(r"WARNING: bad unlock balance detected!(?:.*\n){0,15}?.*is trying to release lock(?:.*\n){0,15}?.*{{PC}} +{{FUNC}}"),
           fmt="WARNING: bad unlock balance in {0}", kind="lockdep"),
    Format(rx(r"WARNING: held lock freed!"),
           report=rx(r"WARNING: held lock freed!(?:.*\n)+?.*at:(?: {{PC}})? +{{FUNC}}"),
           fmt="WARNING: held lock freed in {0}", kind="lockdep"),
    Format(rx(r"WARNING: .*still has locks held!"),
           report=rx(r"WARNING: .*still has locks held!(?:.*\n)+?.*at: (?:{{PC}} +)?{{FUNC}}"),
           fmt="WARNING: still has locks held in {0}", kind="lockdep"),
    Format(rx(r"WARNING: Nested lock was not taken"),
           report=rx(r"WARNING: Nested lock was not taken(?:.*\n)+?.*is trying to lock:(?:.*\n)+?.*at: (?:{{PC}} +)?{{FUNC}}"),
           fmt="WARNING: nested lock was not taken in {0}", kind="lockdep"),
    Format(rx(r"WARNING: kernel stack regs .* has bad 'bp' value"),
           fmt="WARNING: kernel stack regs has bad value", no_stack=True),
    Format(rx(r"WARNING: kernel stack frame pointer .* has bad value"),
           fmt="WARNING: kernel stack regs has bad value", no_stack=True),
    Format(rx(r"WARNING:\s*(?:\n|$)"), fmt="WARNING: corrupted", corrupted=True),
), suppress=(rx("WARNING: /etc/ssh/moduli does not exist, using fixed modulus"),
             rx("WARNING: workqueue cpumask: online intersect > possible intersect"),
             rx("(?i)WARNING: The mand mount option"),
             # Userspace and boot-time advisories that merely start with WARNING:.
             rx("WARNING: Unsupported flag value"), rx("WARNING: Unprivileged eBPF is enabled"),
             rx("WARNING: See https://"), rx("(?i)WARNING: `.*' uses"),
             rx("WARNING: Reset corrupted AGFL"), rx("WARNING: .*mitigation"),
             rx("Speculative Return Stack Overflow: WARNING")))


def _old_lockdep(header: str, anchor: str, fmt: str = "possible deadlock in {0}") -> Format:
    # Kernels before 4.x printed lockdep headers as 'INFO: ... ]'.
    return Format(title=rx(header),
                  report=rx(header + r" \](?:.*\n)+?.*" + anchor + r"(?:.*\n)+?.*at: {{PC}} +{{FUNC}}"),
                  fmt=fmt, kind="lockdep")


_INFO = Group("INFO:", (
    _old_lockdep(r"INFO: possible circular locking dependency detected", "is trying to acquire lock"),
    _old_lockdep(r"INFO: possible irq lock inversion dependency detected", "just changed the state of lock"),
    _old_lockdep(r"INFO: SOFTIRQ-safe -> SOFTIRQ-unsafe lock order detected", "is trying to acquire"),
    _old_lockdep(r"INFO: possible recursive locking detected", "is trying to acquire lock"),
    _old_lockdep(r"INFO: inconsistent lock state", "takes", "inconsistent lock state in {0}"),
    Format(rx(r"INFO: rcu_(?:preempt|sched|bh) (?:self-)?detected(?: expedited)? stall"),
           fmt="INFO: rcu detected stall in {0}",
           stack=StackSpec(parts=(rx(r"apic_timer_interrupt"), rx(RIP_FRAME), PARSE),
                           alt_parts=(rx(r"apic_timer_interrupt"), PARSE),
                           # A stall seen from another CPU: its NMI backtrace.
                           last_resort=(rx(r"NMI backtrace for cpu"), CALL_TRACE, PARSE),
                           # 6.x self-detected stalls: the stalled CPU's RIP, no apic frame.
                           final_parts=(rx(RIP_FRAME), PARSE),
                           skip=("apic_timer_interrupt", "rcu", "nmi", "^exc_nmi",
                                 "perf_event"), extractor="stall")),
    Format(rx(r"INFO: rcu_tasks(?:_trace|_rude)? detected stalls? on tasks"),
           fmt="INFO: rcu detected stall in {0}",
           stack=StackSpec(parts=(CALL_TRACE, PARSE), skip=("rcu",), extractor="hang")),
    Format(rx(r"INFO: trying to register non-static key"),
           fmt="INFO: trying to register non-static key in {0}",
           stack=trace("stack", "lock", "IRQ"), kind="lockdep"),
    Format(rx(r"INFO: suspicious RCU usage"),
           report=rx(r"INFO: suspicious RCU usage(?:.*\n)+?.*?{{SRC}}"),
           fmt="INFO: suspicious RCU usage in {1}",
           stack=trace("rcu", "kmem", "slab", "kmalloc", "vmalloc", "kcalloc", "kzalloc"),
           kind="lockdep"),
    Format(rx(r"INFO: task .*(?:\n.*)?blocked (?:in I/O wait )?for more than [0-9]+ seconds"),
           fmt="INFO: task hung in {0}", stack=trace(extractor="hang")),
    Format(rx(r"INFO: task .* can't die for more than .* seconds"),
           fmt="INFO: task can't die in {0}", stack=trace("schedule")),
    # Old-style KASAN reports cut short.
    Format(rx(r"INFO: (Freed|Allocated) in (.*)"), fmt="INFO: {0} in {1}", corrupted=True),
    Format(rx(r"INFO:\s*(?:\n|$)"), fmt="INFO: corrupted", corrupted=True),
), suppress=(rx("INFO: lockdep is turned off"), rx("INFO: Stall ended before state dump start"),
             rx("INFO: NMI handler"), rx("INFO: recovery required on readonly filesystem"),
             rx("(handler|interrupt).*took too long"), rx("_INFO::"),
             rx("INFO: sys_.* is not present in /proc/kallsyms"),
             rx("INFO: no syscalls can create resource"),
             rx(r"\wINFO:"), rx(r"INFO:\S"),  # Android drivers' 'CAM_INFO:', 'INFO:foo'
             ))

GENERIC_GROUPS = (_BUG, _WARNING, _INFO)
