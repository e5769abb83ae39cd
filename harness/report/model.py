"""The value a parsed kernel report is. Shared by the parser, verdicts and results."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field


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
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    def to_json(self) -> dict:
        data = asdict(self)
        data["frames"] = list(self.frames)
        data["alt_titles"] = list(self.alt_titles)
        if not data["extra"]:
            del data["extra"]
        return data
