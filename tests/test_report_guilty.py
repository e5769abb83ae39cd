"""guilty_file: the source file syzkaller would blame, from a report's lines."""
from __future__ import annotations

from harness.report import parse_text
from harness.report.guilty import guilty_file


def test_first_file_that_is_not_generic_machinery():
    lines = ["BUG: KASAN: use-after-free in foo", "Call Trace:",
             " kasan_report+0x1/0x2 mm/kasan/report.c:12",
             " __list_add+0x1/0x2 include/linux/list.h:60",
             " lock_acquire+0x1/0x2 kernel/locking/lockdep.c:5000",
             " foo+0x1/0x2 fs/ext4/inode.c:100",
             " bar+0x1/0x2 fs/namei.c:200"]
    assert guilty_file("KASAN: use-after-free Read in foo", lines) == "fs/ext4/inode.c"


def test_a_deeper_file_under_the_same_directory_wins():
    lines = [" foo+0x1/0x2 drivers/net/core.c:1", " bar+0x1/0x2 drivers/net/wireless/ath/main.c:2",
             " baz+0x1/0x2 fs/open.c:3"]
    assert guilty_file("WARNING in foo", lines) == "drivers/net/wireless/ath/main.c"


def test_all_generic_falls_back_to_the_first_file_and_none_without_files():
    assert guilty_file("x", [" a+0x1/0x2 lib/string.c:1", " b+0x1/0x2 kernel/sched/core.c:2"]) \
        == "lib/string.c"
    assert guilty_file("x", [" a+0x1/0x2", "Call Trace:"]) == ""


def test_lockdep_irq_state_lines_are_not_the_culprit():
    lines = ["hardirqs last  enabled at (1): [<0>] foo+0x1/0x2 net/ipv4/tcp.c:10",
             " bar+0x1/0x2 net/ipv6/route.c:20"]
    assert guilty_file("WARNING in bar", lines) == "net/ipv6/route.c"


def test_rcu_stalls_start_at_the_interrupt_entry():
    lines = ["INFO: rcu_sched self-detected stall on CPU", " rcu_report+0x1/0x2 fs/generic.c:1",
             " apic_timer_interrupt+0x1/0x2 arch/x86/entry/entry_64.S:1",
             " loop_fn+0x1/0x2 drivers/block/loop.c:5"]
    assert guilty_file("INFO: rcu detected stall in loop_fn", lines) == "drivers/block/loop.c"
    assert guilty_file("WARNING in x", lines) == "fs/generic.c"


def test_reports_carry_the_guilty_file_and_frame():
    log = "\n".join([
        "[    1.000000] ------------[ cut here ]------------",
        "[    1.000001] WARNING: CPU: 0 PID: 1 at mm/mmap.c:10 do_thing+0x1/0x2",
        "[    1.000002] RIP: 0010:do_thing+0x1/0x2",
        "[    1.000003] Call Trace:",
        "[    1.000004]  caller+0x1/0x2 mm/mmap.c:99",
        "[    1.000005] ---[ end trace 0000000000000000 ]---"])
    (rep,) = parse_text(log)
    assert (rep.title, rep.frame, rep.guilty_file) == ("WARNING in do_thing", "do_thing", "mm/mmap.c")
    assert rep.to_json()["guilty_file"] == "mm/mmap.c"


def test_file_search_agrees_with_syzkallers_regex():
    """_first_file walks back from '.c:N'; syzkaller's filenameRe must agree."""
    import random
    import re

    from harness.report.guilty import _first_file

    regex = re.compile(r"([a-zA-Z0-9_\-\./]*[a-zA-Z0-9_\-]+\.(c|h)):[0-9]+")
    rng = random.Random(29)
    lines = ["foo+0x1/0x2 mm/mmap.c:12", "x foo.c.c:1 y", "/.c:1 a/b.h:2", "a.c:b.c:4", ".c:1"]
    lines += ["".join(rng.choice("ab./-_:c h1 ") for _ in range(rng.randint(0, 14))) for _ in range(5000)]
    for line in lines:
        match = regex.search(line)
        assert _first_file(line) == (match.group(1) if match else None), line
