"""Which console lines belong to a report, and which ones end it.

A report's end is exact when the kernel prints a marker: `---[ end trace`
after an oops or WARNING, `---[ end Kernel panic` after a panic, and the
closing row of '=' after a sanitizer report. Other reports (lockdep,
hung task, stalls) just stop after their last backtrace; for those the
end is the last line that looks like report content, so that unrelated
messages (or guest userspace output) printed afterwards are left out.
"""
from __future__ import annotations

import re

TRACE_END = re.compile(r"^---\[ end (?:trace|Kernel panic)")
SANITIZER_END = re.compile(r"^={20,}\s*$")
# Lines that open a report right before its header line: separators,
# and the one-line reasons the kernel prints before WARN()/BUG() fires.
OPENERS = re.compile(r"^(?:-+\[ cut here \]-+\s*$|8<-+ cut here -+\s*$|={20,}\s*$|"
                     r"DEBUG_LOCKS_WARN_ON\(|refcount_t: |list_(?:add|del) corruption|"
                     r"rust_kernel: panicked|kernel BUG at )")
# A literal that every raw line an OPENERS match can come from holds (split_line
# drops '\r's, so a line with one may hold the rest apart): most reports have
# no such line just above their header, and need not split the lines there.
# (Every branch a literal, in one group: sre then skips to the places where
# one of their first characters is, 4x faster than with '={20}'.)
OPENER_HINT = re.compile(r"(?:cut here|====================|DEBUG_LOCKS_WARN_ON\(|refcount_t: |"
                         r"list_(?:add|del) corruption|rust_kernel: panicked|kernel BUG at |\r)")

# What the kernel prints inside oopses, lockdep, hung-task, stall and
# sanitizer reports, on x86, arm, arm64, riscv, powerpc and s390.
_ALTERNATIVES = (
    r"^\s+\S",  # indented: frames, lockdep details, 'lock(...)' scenarios
    r"^(?:Call [Tt]race|<\/?(?:TASK|IRQ|NMI|SOFTIRQ|EOI)>|Backtrace|Stack:|Exception stack)",
    r"^(?:N?IP|RIP|RSP|RAX|RBX|RCX|RDX|RSI|RDI|RBP|R[0-9]+|EAX|ESI|EBP|DS|FS|GS|CS|CR[0-9]|DR[0-9]|"
    r"Code|PKRU|EFLAGS|ORIG_RAX)\s*:",
    r"^(?:Modules linked in|CPU: |Hardware name|Workqueue:|Kernel Offset|Dumping ftrace|"
    r"Rebooting in|---\[ end|-+\[ cut here|={10,}|-{10,}|\*\*\* DEADLOCK)",
    r"^(?:stack backtrace|Showing all locks|Showing busy workqueues|NMI backtrace|Sending NMI|"
    r"irq event stamp|hardirqs|softirqs|in_atomic\(\)|preempt_count|Preemption disabled|"
    r"caller is|irqs disabled|Task dump|task:\S+ +state:|INFO: lockdep is turned off)",
    r"^(?:\S+ is trying to|but task is already|which lock already|the existing dependency|"
    r"other info that might|Possible (?:unsafe|interrupt unsafe)|the shortest dependencies|"
    r"to a [A-Z]+-[a-z]+ lock|and interrupts could|which would create|is trying to|"
    r"but there are no more locks|leaving the kernel|lock\(|{[A-Z]+-ON-[A-Z]+}|"
    r"\{[A-Z-]+\} state was registered|inconsistent \{|[0-9]+ locks? held by|no locks held by|"
    r"#[0-9]+:|-> #[0-9]+|[0-9a-f]{8,16} \(|\([^)]*\)\{|.* at: \S+\+0x)",
    r"^(?:Read of size|Write of size|Read at addr|Write at addr|The buggy address|Allocated by|"
    r"Freed by|Last potentially|Second to last|Memory state around|[> ]?[0-9a-f]{8,16}: |"
    r"page:|flags:|raw:|head:|page dumped|page_owner|Object |Redzone |Padding |Pointer tag|"
    r"kfence-#|Use-after-free|Out-of-bounds|Invalid (?:read|write|free)|Corrupted memory|"
    r"(?:read|write)(?: \(marked\))? to 0x|value changed|Reported by Kernel|index [0-9]+ is out|"
    r"shift exponent|signed integer overflow|load of value|member access|"
    r"[0-9-]+ [+*-] [0-9-]+ cannot|division by zero|null-ptr-deref|The buggy address)",
    r"^(?:pstate|pc|lr|sp|x[0-9]+|epc|ra|gp|tp|t[0-9]|s[0-9]+|a[0-9]|status|badaddr|cause|"
    r"psr|r[0-9]+|ip|fp|Flags|Control|Process|Mem abort info|Data abort info|ESR|EC|IL|SET|"
    r"FnV|EA|S1PTW|FSC|ISV|CM|WnR|user pgtable|swapper pgtable|\[[0-9a-f]+\] pgd|"
    r"[0-9a-f]{4}:|PC is at|LR is at|Register r|Internal error|Function entered|"
    r"Krnl|GPRS|NIP|MSR|REGS|GPR[0-9]+|CTR|LR |XER|CFAR|DAR|DSISR|IRQMASK|Instruction dump|"
    r"--- interrupt|Last Breaking|Unable to handle|#PF:|PGD |P4D |PUD |PMD |PTE |Oops|"
    r"Thread overran|Watchdog detected|rcu: |\s*\(t=|\s*\(detected by|Kernel panic|"
    r"DEBUG_LOCKS_WARN_ON|list_(?:add|del) corruption|refcount_t:|kernel BUG|BUG: |WARNING: |"
    r"INFO: |general protection fault|KASAN: |kasan: |invalid opcode|divide error)\b",
)
_CONTENT = re.compile("|".join(_ALTERNATIVES))
# The same test on whole lines of a piece of log, for the scanner's bulk
# path. Nothing in it may cross a line end.
_CONTENT_TEXT = "|".join(a[1:].replace(r"\s", r"[ \t]").replace("[^)]", "[^)\n]") for a in _ALTERNATIVES)
# split_line's questionable frames: x86 ' ? func' (one branch per form, each
# led by a literal, which sre rejects at once), powerpc '... (unreliable)'.
QUESTIONABLE_TEXT = r"(?: \? |\? |\[<[0-9a-f]++>\] ?\? )(?![^\n]*<EOI>)"
# (powerpc's '... (unreliable)' is one too: the scanner feeds such lines alone.)
# re.split on '\n' + whole prefix-stripped lines: the pieces come in threes,
# [questionable, not content, text], after a first ''. `questionable` is ''
# for a questionable frame, `not content` is '' for a line that is neither
# report content nor questionable, each None otherwise.
LINE_SPLITTER = re.compile(r"(?m)\n(?:(?=(?:" + QUESTIONABLE_TEXT + ")())|(?=" + _CONTENT_TEXT + ")|())")


def is_content(text: str) -> bool:
    """Does this (prefix-stripped) line look like part of a kernel report?"""
    return bool(text) and _CONTENT.match(text) is not None
