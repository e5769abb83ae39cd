"""The value a parsed kernel report is. Shared by the parser, verdicts and results."""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

# Escape sequences and C0 controls (but tab and newline) from the guest must
# not reach a terminal, an XML file or a browser: the guest is untrusted.
_CONTROL_RE = re.compile(r"\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-_]?|[\x00-\x08\x0b-\x1f\x7f\x80-\x9f]")


def printable(text: str) -> str:
    """Text from the guest made safe for human output, JUnit and HTML."""
    return _CONTROL_RE.sub("", text)


@dataclass(frozen=True)
class Report:
    """One kernel report found in a console log.

    Lines are 1-based and inclusive, counted in the log as given (after
    splitting on '\\n'). `type` is syzkaller's crash type name (LOCKDEP,
    HANG, WARNING, BUG, ATOMIC_SLEEP, ...); `kind` is the harness's coarse
    class (lockdep, atomic-sleep, preempt, hang, rcu-stall, soft-lockup,
    warning, bug, oops, panic, kasan, ...).
    """

    title: str
    type: str
    kind: str
    start_line: int
    end_line: int
    frames: tuple[str, ...] = ()
    alt_titles: tuple[str, ...] = ()
    corrupted: bool = False
    corrupted_reason: str = ""
    primary: bool = True
    count: int = 1
    # The function the title names (syzkaller's Report.Frame: what follows
    # the title's last ' in '), and the source file syzkaller would blame
    # (its GuiltyFile), when the report's frames carry file:line.
    frame: str = ""
    guilty_file: str = ""
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    def to_json(self) -> dict:
        data = asdict(self)
        data["frames"] = list(self.frames)
        data["alt_titles"] = list(self.alt_titles)
        if not data["extra"]:
            del data["extra"]
        return data
