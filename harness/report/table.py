"""The report table: every kind of kernel report we recognise, as data.

Each Group is opened by a header substring found anywhere in a console
line; its Formats are tried against the report text and the one whose
title regex matches earliest wins (ties: the one listed first). Titles,
formats, skip lists and suppressions are syzkaller's (pkg/report/linux.go),
so that our titles can be searched for on syzbot and the mailing lists;
where we differ, a comment says why. Groups outside the generic
BUG:/WARNING:/INFO: ones live in table_oops.py.
"""
from __future__ import annotations

from .patterns import CALL_TRACE, PARSE, RIP, WARNING_START, Format, Group, StackSpec, rx


def trace(*skip: str, extractor: str = "") -> StackSpec:
    """The common case: the first interesting frame after 'Call Trace:'."""
    return StackSpec(parts=(CALL_TRACE, PARSE), skip=skip, extractor=extractor)


def fault_trace(*skip: str, extractor: str = "") -> StackSpec:
    """Faults: the faulting function (RIP / pc), else the call trace."""
    return StackSpec(parts=(RIP, CALL_TRACE, PARSE), skip=skip, extractor=extractor)


def warning_trace(*skip: str) -> StackSpec:
    """WARNINGs trap: the stack starts at the RIP line (x86, arm64 'pc :'),
    the '--- interrupt:' line (powerpc), or plainly after 'Call Trace:'."""
    return StackSpec(parts=(WARNING_START, PARSE),
                     parts2=(CALL_TRACE, PARSE), skip=skip)


def _at(header: str, anchor: str, fmt: str = "possible deadlock in {0}", pc: str = "(?:{{PC}} +)?") -> Format:
    """A lockdep report whose culprit follows `anchor` as '... at: func'."""
    return Format(title=rx(header),
                  report=rx(header + r"(?:.*\n)+?.*" + anchor + r"(?:.*\n)+?.*at: " + pc + "{{FUNC}}"),
                  fmt=fmt, kind="lockdep")


_BUG = Group("BUG:", (
    Format(rx(r"BUG: KASAN:"),
           report=rx(r"BUG: KASAN: ([a-z\-]+) in {{FUNC}}(?:.*\n)+?.*(Read|Write) (?:of size|at addr) (?:[0-9a-f]+)"),
           fmt="KASAN: {0} {2} in {3}", alt=("bad-access in {3}",),
           stack=StackSpec(parts=(rx(r"BUG: KASAN: (?:[a-z\-]+) in {{FUNC}}"), CALL_TRACE, PARSE),
                           skip=("kernel_fault", "tag_check", "mem_abort", "^el1_", "^el1h_"))),
    Format(rx(r"BUG: KASAN:"),
           report=rx(r"BUG: KASAN: (?:double-free or invalid-free|double-free|invalid-free) in {{FUNC}}"),
           fmt="KASAN: invalid-free in {1}", alt=("invalid-free in {1}",),
           stack=StackSpec(parts=(rx(r"BUG: KASAN: (?:double-free or invalid-free|double-free|invalid-free) in {{FUNC}}"),
                                  CALL_TRACE, PARSE),
                           skip=("slab_", "kfree", "vunmap", "vfree"))),
    Format(rx(r"BUG: KASAN: ([a-z\-]+) on address(?:.*\n)+?.*(Read|Write) of size ([0-9]+)"),
           fmt="KASAN: {0} {1}"),
    Format(rx(r"BUG: KASAN: (.*)"), fmt="KASAN: {0}", corrupted=True),
    Format(rx(r"BUG: KMSAN: kernel-usb-infoleak"),
           report=rx(r"BUG: KMSAN: kernel-usb-infoleak in {{FUNC}}"),
           fmt="KMSAN: kernel-usb-infoleak in {1}", alt=("KMSAN origin in {2}",), no_stack=True,
           stack=StackSpec(parts=(PARSE, rx(r"(Local variable .* created at:|Uninit was created at:)"), PARSE),
                           skip=("alloc_skb", "usb_submit_urb", "usb_start_wait_urb", "usb_bulk_msg",
                                 "usb_interrupt_msg", "usb_control_msg"))),
    Format(rx(r"BUG: KMSAN:"), report=rx(r"BUG: KMSAN: ([a-z\-]+) in {{FUNC}}"),
           fmt="KMSAN: {0} in {2}", alt=("bad-access in {2}",), no_stack=True,
           stack=StackSpec(parts=(PARSE, rx(r"(Local variable .* created at:|Uninit was created at:)"), PARSE),
                           skip=("alloc_skb", "netlink_ack", "netlink_rcv_skb",
                                 # Encryption routines are where the bug is hit, not where it is.
                                 "_encrypt$", "^(?:crypto|cipher|drbg|rng)_"))),
    Format(rx(r"BUG: KCSAN: data-race"), report=rx(r"BUG: KCSAN: (.*)"), fmt="KCSAN: {0}", no_stack=True),
    Format(rx(r"BUG: KCSAN:"), report=rx(r"BUG: KCSAN: (.*)"), fmt="KCSAN: {0}", no_stack=True),
    Format(rx(r"BUG: KFENCE: (use-after-free|out-of-bounds) (read|write) in {{FUNC}}"),
           fmt="KFENCE: {0} {1} in {3}", alt=("bad-access in {3}",),
           stack=StackSpec(parts=(rx(r"BUG: KFENCE: (?:[a-z\- ]+) in {{FUNC}}"), PARSE))),
    Format(rx(r"BUG: KFENCE: invalid free in {{FUNC}}"), fmt="KFENCE: invalid free in {1}",
           alt=("invalid-free in {1}",), no_stack=True,
           stack=StackSpec(parts=(rx(r"BUG: KFENCE: (?:[a-z\- ]+) in {{FUNC}}"), PARSE))),
    Format(rx(r"BUG: KFENCE: invalid (read|write) in {{FUNC}}"), fmt="KFENCE: invalid {0} in {2}",
           alt=("bad-access in {2}",),
           stack=StackSpec(parts=(rx(r"BUG: KFENCE: (?:[a-z\- ]+) in {{FUNC}}"), PARSE))),
    Format(rx(r"BUG: KFENCE: memory corruption in {{FUNC}}"), fmt="KFENCE: memory corruption in {1}",
           no_stack=True, stack=StackSpec(parts=(rx(r"BUG: KFENCE: (?:[a-z\- ]+) in {{FUNC}}"), PARSE))),
    Format(rx(r"BUG: (?:unable to handle kernel paging request|unable to handle page fault for address|Unable to handle kernel data access)"),
           fmt="BUG: unable to handle kernel paging request in {0}", alt=("bad-access in {0}",),
           stack=fault_trace()),
    Format(rx(r"BUG: (?:unable to handle kernel NULL pointer dereference|kernel NULL pointer dereference|Kernel NULL pointer dereference)"),
           fmt="BUG: unable to handle kernel NULL pointer dereference in {0}", alt=("bad-access in {0}",),
           stack=fault_trace()),
    # Ours: 6.x x86 and powerpc's other bad_page_fault() kinds, which syzkaller
    # only sees as the corrupted two-printk case below.
    Format(rx(r"BUG: (?:unable to handle kernel access to user memory)"),
           fmt="BUG: unable to handle kernel access to user memory in {0}", stack=fault_trace()),
    Format(rx(r"BUG: Unable to handle kernel (instruction fetch|unaligned access)"),
           fmt="BUG: unable to handle kernel {0} in {1}", stack=fault_trace()),
    # Printed as two printk()s; the second half may be lost.
    Format(rx(r"BUG: (?:unable to handle kernel|Unable to handle kernel)"),
           fmt="BUG: unable to handle kernel", corrupted=True),
    Format(rx(r"BUG: (spinlock|rwlock) (lockup suspected|already unlocked|recursion"
              r"|cpu recursion|bad magic|wrong owner|wrong CPU|trylock failure on UP)"),
           fmt="BUG: {0} {1} in {2}", stack=trace("spin_", "_lock", "_unlock"), kind="lockdep"),
    Format(rx(r"BUG: soft lockup"), fmt="BUG: soft lockup in {0}", alt=("stall in {0}",),
           stack=fault_trace(extractor="stall")),
    Format(rx(r"BUG: .*still has locks held!"),
           report=rx(r"BUG: .*still has locks held!(?:.*\n)+?.*{{PC}} +{{FUNC}}"),
           fmt="BUG: still has locks held in {0}", kind="lockdep"),
    Format(rx(r"BUG: scheduling while atomic"), fmt="BUG: scheduling while atomic in {0}",
           stack=trace("schedule")),
    Format(rx(r"BUG: lock held when returning to user space"),
           report=rx(r"BUG: lock held when returning to user space(?:.*\n)+?.*leaving the kernel with locks still held(?:.*\n)+?.*at: (?:{{PC}} +)?{{FUNC}}"),
           fmt="BUG: lock held when returning to user space in {0}", no_stack=True, kind="lockdep"),
    Format(rx(r"BUG: bad unlock balance detected!"), fmt="BUG: bad unlock balance in {0}",
           stack=StackSpec(parts=(rx(r"{{PC}} +{{FUNC}}"), CALL_TRACE, PARSE)), kind="lockdep"),
    Format(rx(r"BUG: held lock freed!"),
           report=rx(r"BUG: held lock freed!(?:.*\n)+?.*{{PC}} +{{FUNC}}"),
           fmt="BUG: held lock freed in {0}", kind="lockdep"),
    Format(rx(r"BUG: Bad rss-counter state"), fmt="BUG: Bad rss-counter state", no_stack=True),
    Format(rx(r"BUG: non-zero nr_ptes on freeing mm"), fmt="BUG: non-zero nr_ptes on freeing mm", no_stack=True),
    Format(rx(r"BUG: non-zero nr_pmds on freeing mm"), fmt="BUG: non-zero nr_pmds on freeing mm", no_stack=True),
    Format(rx(r"BUG: Dentry .* still in use"),
           report=rx(r"BUG: Dentry .* still in use \([0-9]+\) \[(unmount) of ([^\]]+)\]"),
           fmt="BUG: Dentry still in use in {0}", alt=("BUG: Dentry still in use [{0} of {1}]",)),
    Format(rx(r"BUG: Bad page (state|cache)"), fmt="BUG: Bad page {0} in {1}",
           stack=StackSpec(parts=(rx(r"page last allocated"), PARSE),
                           skip=("(free|put|get|update|release)_page", "free_unref", "^_*folio",
                                 "truncate_inode_pages", "page_frag_free", "alloc", "vmap",
                                 "page_owner"))),
    Format(rx(r"BUG: Bad page map"), fmt="BUG: Bad page map"),
    # Named after the first work item the busy-workqueue dump shows in flight, when it shows one.
    Format(rx(r"BUG: workqueue lockup"),
           report=rx(r"BUG: workqueue lockup(?:.*\n)+?\s*in-flight: [0-9]+:([a-zA-Z0-9_]+)"),
           fmt="BUG: workqueue lockup in {0}", no_stack=True, kind="hang"),
    Format(rx(r"BUG: workqueue lockup"), fmt="BUG: workqueue lockup", no_stack=True, kind="hang"),
    Format(rx(r"BUG: sleeping function called from invalid context at (.*)"),
           fmt="BUG: sleeping function called from invalid context in {1}", stack=trace()),
    Format(rx(r"BUG: using ([a-z_]+)\(\) in preemptible"),
           fmt="BUG: using {0}() in preemptible code in {1}",
           stack=trace("dump_stack", "preemption", "preempt", "debug_", "processor_id", "this_cpu")),
    Format(rx(r"BUG: workqueue leaked lock or atomic"),
           report=rx(r"BUG: workqueue leaked lock or atomic(?:.*\n)+?.*last function: ([a-zA-Z0-9_]+)\n"),
           fmt="BUG: workqueue leaked lock or atomic in {0}", no_stack=True, kind="lockdep"),
    Format(rx(r"BUG: memory leak"), fmt="memory leak in {0}",
           stack=StackSpec(parts=(rx(r"backtrace(?: \(crc [0-9a-fA-F]*\))?:"), PARSE),
                           skip=("kmemleak", "mmap", "kmem", "slab", "alloc", "create_object",
                                 "idr_get", "list_lru_init", "kasprintf", "kvasprintf",
                                 "pcpu_create", "strdup", "strndup", "memdup"))),
    Format(rx(r"BUG: .*stack guard page was hit at"), fmt="BUG: stack guard page was hit in {0}",
           alt=("stack-overflow in {0}",), stack=fault_trace(extractor="stall")),
    # arm/arm64 print what x86 reports as a lockdep WARNING; one title for both.
    Format(rx(r"BUG: Invalid wait context"), fmt="WARNING: locking bug in {0}",
           stack=trace("lock_sock", "release_sock"), kind="lockdep"),
    # Ours: lockdep's own capacity and registration complaints, which syzkaller
    # leaves untitled (the header line itself).
    Format(rx(r"BUG: MAX_(LOCKDEP_[A-Z_]+|STACK_TRACE_ENTRIES|LOCK_DEPTH) too low!"),
           fmt="BUG: MAX_{0} too low!", no_stack=True, kind="lockdep"),
    Format(rx(r"BUG:\s*(?:\n|$)"), fmt="BUG: corrupted", corrupted=True),
), suppress=(rx("ODEBUG:"), rx("Boot_DEBUG:"), rx("xlog_status:"), rx("DEBUG:"),
             rx("BUG: no syscalls can create resource")))

_WARNING = Group("WARNING:", (
    Format(rx(r"WARNING: .*lib/debugobjects\.c.* (?:debug_print|debug_check|at)"),
           fmt="WARNING: ODEBUG bug in {0}",
           stack=warning_trace("debug_", "rcu", "hrtimer_", "timer_", "work_", "percpu_", "vunmap",
                               "vfree", "__free_", "debug_check", "kobject_")),
    Format(rx(r"WARNING: .*mm/usercopy\.c.* (?:usercopy_warn|at)"), fmt="WARNING: bad usercopy in {0}",
           stack=warning_trace("usercopy", "__check")),
    Format(rx(r"WARNING: .*lib/kobject\.c.* (?:kobject_|at)"), fmt="WARNING: kobject bug in {0}",
           stack=warning_trace("kobject_")),
    Format(rx(r"WARNING: .*fs/proc/generic\.c.* (?:proc_register|at)"),
           fmt="WARNING: proc registration bug in {0}", stack=warning_trace("proc_")),
    Format(rx(r"WARNING: .*lib/refcount\.c.* (?:refcount_|at)"), fmt="WARNING: refcount bug in {0}",
           stack=warning_trace("refcount", "kobject_"), kind="refcount"),
    Format(rx(r"WARNING: .*kernel/locking/lockdep\.c.*lock_"), fmt="WARNING: locking bug in {0}",
           stack=warning_trace("lock_sock", "release_sock"), kind="lockdep"),
    Format(rx(r"WARNING: .*still has locks held!"),
           report=rx(r"WARNING: .*still has locks held!(?:.*\n)+?.*at: {{FUNC}}"),
           fmt="WARNING: still has locks held in {0}", kind="lockdep"),
    Format(rx(r"WARNING: Nested lock was not taken"), fmt="WARNING: nested lock was not taken in {0}",
           stack=warning_trace(), kind="lockdep"),
    Format(rx(r"WARNING: lock held when returning to user space"),
           report=rx(r"WARNING: lock held when returning to user space(?:.*\n)+?.*leaving the kernel with locks still held(?:.*\n)+?.*at: (?:{{PC}} +)?{{FUNC}}"),
           fmt="WARNING: lock held when returning to user space in {0}", no_stack=True, kind="lockdep"),
    Format(rx(r"WARNING: .*mm/.*\.c.* k?.?malloc"), fmt="WARNING: kmalloc bug in {0}",
           stack=warning_trace("kmalloc", "krealloc", "slab", "kmem")),
    Format(rx(r"WARNING: .*mm/vmalloc.c.*__vmalloc_node"), fmt="WARNING: zero-size vmalloc in {0}",
           stack=warning_trace()),
    Format(rx(r"WARNING: .* usb_submit_urb"), fmt="WARNING in {0}/usb_submit_urb",
           stack=warning_trace("usb_submit_urb", "usb_start_wait_urb", "usb_bulk_msg",
                               "usb_interrupt_msg", "usb_control_msg")),
    # Since 6.19 the kernel may not name the function ('at 0x0').
    Format(rx(r"WARNING: {{SRC}} at 0x\d+, CPU#\d+"), fmt="WARNING in {1}", stack=warning_trace()),
    # Ours: the same title, filed as lockdep (our kind) when locking code warns.
    Format(rx(r"WARNING: .* at kernel/locking/{{SRC}} {{FUNC}}"), fmt="WARNING in {2}",
           stack=warning_trace(), kind="lockdep"),
    Format(rx(r"WARNING: .* at {{SRC}} {{FUNC}}"), fmt="WARNING in {2}", stack=warning_trace()),
    # 'WARNING: mm/foo.c:12 at func+0x1/0x2, CPU#0: comm/pid' (6.19). Ours: a
    # WARN() condition may come before the file (syzkaller's regex has none).
    Format(rx(r"WARNING: (?:[^\n]* )?{{SRC}} at {{FUNC}}"), fmt="WARNING in {2}", stack=warning_trace()),
    Format(rx(r"WARNING: possible circular locking dependency detected"),
           report=rx(r"WARNING: possible circular locking dependency detected(?:.*\n)+?.*is trying to acquire lock"),
           fmt="possible deadlock in {0}",
           stack=StackSpec(parts=(rx(r"at: (?:{{PC}} +)?{{FUNC}}"), rx(r"at: (?:{{PC}} +)?{{FUNC}}"), PARSE),
                           # Work-item locks: the deadlock is the work item's.
                           skip=("process_one_work", "flush_workqueue", "drain_workqueue",
                                 "destroy_workqueue")),
           kind="lockdep"),
    _at(r"WARNING: possible irq lock inversion dependency detected", "just changed the state of lock"),
    Format(rx(r"WARNING: .*-safe -> .*-unsafe lock order detected"), fmt="possible deadlock in {0}",
           stack=StackSpec(parts=(rx(r"which became (?:.*) at:"), PARSE)), kind="lockdep"),
    _at(r"WARNING: possible recursive locking detected", "is trying to acquire lock"),
    Format(rx(r"WARNING: inconsistent lock state"),
           report=rx(r"WARNING: inconsistent lock state(?:.*\n)+?.*takes(?:.*\n)+?.*at: (?:{{PC}} +)?{{FUNC}}"),
           fmt="inconsistent lock state in {1}", stack=trace(), kind="lockdep"),
    Format(rx(r"WARNING: suspicious RCU usage"),
           report=rx(r"WARNING: suspicious RCU usage(?:.*\n)+?.*?{{SRC}}"),
           fmt="WARNING: suspicious RCU usage in {1}", stack=trace("rcu", "kmem", "slab"), kind="lockdep"),
    Format(rx(r"WARNING: kernel stack regs at [0-9a-f]+ in [^ ]* has bad '([^']+)' value"),
           fmt="WARNING: kernel stack regs has bad '{0}' value", no_stack=True),
    Format(rx(r"WARNING: kernel stack frame pointer at [0-9a-f]+ in [^ ]* has bad value"),
           fmt="WARNING: kernel stack frame pointer has bad value", no_stack=True),
    Format(rx(r"WARNING: bad unlock balance detected!"), fmt="WARNING: bad unlock balance in {0}",
           stack=StackSpec(parts=(rx(r"{{PC}} +{{FUNC}}"), CALL_TRACE, PARSE)), kind="lockdep"),
    Format(rx(r"WARNING: held lock freed!"),
           report=rx(r"WARNING: held lock freed!(?:.*\n)+?.*at:(?: {{PC}})? +{{FUNC}}"),
           fmt="WARNING: held lock freed in {0}", kind="lockdep"),
    Format(rx(r"WARNING: kernel stack regs .* has bad 'bp' value"),
           fmt="WARNING: kernel stack regs has bad value", no_stack=True),
    Format(rx(r"WARNING: kernel stack frame pointer .* has bad value"),
           fmt="WARNING: kernel stack regs has bad value", no_stack=True),
    Format(rx(r"WARNING:\s*(?:\n|$)"), fmt="WARNING: corrupted", corrupted=True),
), suppress=(rx("WARNING: /etc/ssh/moduli does not exist, using fixed modulus"),
             rx("WARNING: workqueue cpumask: online intersect > possible intersect"),
             rx("WARNING: [Tt]he mand mount option"),
             rx(r"WARNING: Unsupported flag value\(s\) of 0x%x in DT_FLAGS_1"),
             rx("WARNING: Unprivileged eBPF is enabled with eIBRS"),
             rx(r"WARNING: fbcon: Driver '(.*)' missed to adjust virtual screen size (\((?:\d+)x(?:\d+) vs\. (?:\d+)x(?:\d+)\))"),
             rx(r"WARNING: See https.* for mitigation options."),
             rx(r"WARNING: kernel not compiled with CPU_SRSO"),
             rx(r"EXT4-[Ff][Ss](?: \(.*\))?:"),
             rx(r"(?i)warning: .* uses (deprecated v2 capabilities|wireless extensions)"),
             rx(r"XFS \(\w+\): WARNING"),
             # Ours: boot-time advisories our guests print that merely start with WARNING:.
             rx("WARNING: Reset corrupted AGFL"), rx("Speculative Return Stack Overflow: WARNING"),
             # Ours: x86's Spectre-v2 BHB advisory has a second wording without eIBRS
             # (arch/x86/kernel/cpu/bugs.c); it is the same notice as syzkaller's above.
             rx("WARNING: Unprivileged eBPF is enabled, data leaks possible")))

_INFO = Group("INFO:", (
    # Kernels before 4.x printed lockdep headers as 'INFO: ... ]'.
    _at(r"INFO: possible circular locking dependency detected \]", "is trying to acquire lock", pc="{{PC}} +"),
    _at(r"INFO: possible irq lock inversion dependency detected \]", "just changed the state of lock",
        pc="{{PC}} +"),
    _at(r"INFO: SOFTIRQ-safe -> SOFTIRQ-unsafe lock order detected \]", "is trying to acquire", pc="{{PC}} +"),
    _at(r"INFO: possible recursive locking detected \]", "is trying to acquire lock", pc="{{PC}} +"),
    _at(r"INFO: inconsistent lock state \]", "takes", "inconsistent lock state in {0}", pc="{{PC}} +"),
    # Ours: a self-detected stall is printed by the stalled CPU itself, and
    # since 5.x x86 shows its registers without the apic_timer_interrupt frame
    # syzkaller anchors on; its RIP and stack are then the stall's.
    Format(rx(r"INFO: rcu_(?:preempt|sched|bh) self-detected(?: expedited)? stall"),
           fmt="INFO: rcu detected stall in {0}", alt=("stall in {0}",),
           stack=StackSpec(parts=(rx(r"apic_timer_interrupt"), RIP, PARSE),
                           parts2=(rx(r"(?:apic_timer_interrupt|Exception stack|el1h_64_irq)"), PARSE),
                           parts3=(RIP, CALL_TRACE, PARSE),
                           skip=("apic_timer_interrupt", "rcu"), extractor="stall")),
    Format(rx(r"INFO: rcu_(?:preempt|sched|bh) (?:self-)?detected(?: expedited)? stall"),
           fmt="INFO: rcu detected stall in {0}", alt=("stall in {0}",),
           stack=StackSpec(parts=(rx(r"apic_timer_interrupt"), RIP, PARSE),
                           parts2=(rx(r"(?:apic_timer_interrupt|Exception stack|el1h_64_irq)"), PARSE),
                           skip=("apic_timer_interrupt", "rcu"), extractor="stall")),
    # Ours: RCU Tasks stalls, which syzkaller does not title.
    Format(rx(r"INFO: rcu_tasks(?:_trace|_rude)? detected stalls? on tasks"),
           fmt="INFO: rcu detected stall in {0}",
           stack=StackSpec(parts=(CALL_TRACE, PARSE), skip=("rcu",), extractor="hang")),
    Format(rx(r"INFO: trying to register non-static key"),
           fmt="INFO: trying to register non-static key in {0}",
           stack=trace("stack", "lock", "IRQ"), kind="lockdep"),
    Format(rx(r"INFO: suspicious RCU usage"),
           report=rx(r"INFO: suspicious RCU usage(?:.*\n)+?.*?{{SRC}}"),
           fmt="INFO: suspicious RCU usage in {1}", stack=trace("rcu", "kmem", "slab"), kind="lockdep"),
    # Ours: the '(?:\n.*)?' lets 6.x's 'INFO: task x:1 blocked for more than'
    # survive a line break inserted by a narrow console.
    Format(rx(r"INFO: task .*(?:\n.*)?blocked (?:in I/O wait )?for more than [0-9]+ seconds"),
           fmt="INFO: task hung in {0}", alt=("hang in {0}",), stack=trace(extractor="hang")),
    Format(rx(r"INFO: task .* can't die for more than .* seconds"),
           fmt="INFO: task can't die in {0}", alt=("hang in {0}",), stack=trace("schedule")),
    # Old-style KASAN reports cut short.
    Format(rx(r"INFO: (Freed|Allocated) in (.*)"), fmt="INFO: {0} in {1}", corrupted=True),
    Format(rx(r"INFO:\s*(?:\n|$)"), fmt="INFO: corrupted", corrupted=True),
), suppress=(rx("INFO: lockdep is turned off"), rx("INFO: Stall ended before state dump start"),
             rx("INFO: NMI handler"), rx("INFO: recovery required on readonly filesystem"),
             rx("(handler|interrupt).*took too long"),
             rx("INFO: sys_.* is not present in /proc/kallsyms"),
             rx("INFO: no syscalls can create resource"),
             rx("rmt_storage:INFO:"), rx("_INFO:"),
             # Ours: 'CAM_INFO:', 'INFO:foo' from drivers and userspace are prose.
             # ('\wINFO:' as a literal and a look-behind: the same lines, but sre
             # skips to an I where a leading \w made it try every position.)
             rx(r"INFO:(?<=\wINFO:)"), rx(r"INFO:\S"),
             ))

GENERIC_GROUPS = (_BUG, _WARNING, _INFO)
