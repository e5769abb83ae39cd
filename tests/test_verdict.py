"""Verdict classification: who is at fault, and the exit code CI and bisect rely on."""
from harness.record import RunRecord
from harness.report.model import Report
from harness.verdict import Ending, decide


def _report(title="possible deadlock in swapoff", kind="lockdep", primary=True):
    return Report(title=title, type="LOCKDEP", kind=kind, start_line=10, end_line=40, primary=primary)


def test_clean_completed_storm_passes():
    verdict = decide([], Ending(reached_ready=True, storm="completed", qemu_exit=0))
    assert (verdict.verdict, verdict.exit_code) == ("pass", 0)


def test_kernel_report_fails_whatever_the_ending():
    for ending in (Ending(True, "completed", 0), Ending(False, qemu_exit=0), Ending(True, "timeout"),
                   Ending(True, "qemu-exited", qemu_signal=9)):
        verdict = decide([_report()], ending)
        assert (verdict.verdict, verdict.exit_code) == ("fail", 1)
        assert verdict.reason == "kernel report: possible deadlock in swapoff"


def test_primary_report_names_the_cause():
    consequence = _report("BUG: soft lockup in foo", "soft-lockup", primary=False)
    cause = _report("possible recursive locking in foo")
    verdict = decide([consequence, cause], Ending(True, "completed", 0))
    assert verdict.reason.endswith("possible recursive locking in foo")
    assert len(verdict.reports) == 2


def test_never_ready_is_boot_failure():
    verdict = decide([], Ending(reached_ready=False, qemu_exit=0))
    assert (verdict.verdict, verdict.exit_code) == ("boot-failure", 5)
    verdict = decide([], Ending(reached_ready=False, killed_by_harness=True))
    assert verdict.exit_code == 5


def test_qemu_crash_is_infra_error():
    verdict = decide([], Ending(reached_ready=False, qemu_exit=1))
    assert (verdict.verdict, verdict.exit_code) == ("infra-error", 3)
    verdict = decide([], Ending(reached_ready=True, storm="qemu-exited", qemu_signal=9))
    assert verdict.exit_code == 3


def test_hung_guest_is_a_fail_with_a_hang_report():
    verdict = decide([], Ending(reached_ready=True, storm="timeout", killed_by_harness=True))
    assert verdict.exit_code == 1
    assert verdict.reports[0].kind == "hang"


def test_silent_reset_is_a_fail():
    verdict = decide([], Ending(reached_ready=True, storm="qemu-exited", qemu_exit=0))
    assert verdict.exit_code == 1
    assert verdict.reports[0].kind == "reset"


def test_stressor_failure_is_a_fail():
    verdict = decide([], Ending(True, "completed", 0, stressor_failures=("hog: pattern mismatch",)))
    assert verdict.exit_code == 1
    assert "hog: pattern mismatch" in verdict.reason


def test_guest_text_is_made_printable_for_humans_and_junit():
    from harness.report.model import printable
    from harness.results import junit_xml

    hostile = "BUG: task \x1b]0;pwned\x07\x1b[2Jevil\x00name\r"
    # shown escaped, not dropped: the reader sees that the guest sent something
    assert printable(hostile) == r"BUG: task \x1b]0;pwned\x07\x1b[2Jevil\x00name\x0d"
    assert printable("a\u202eb\u2066c\ud800d\ufffe\uffff\ne") == r"a\u202eb\u2066c\ud800d\ufffe\uffff\ne"
    assert printable("a\tb\nc", newlines=True) == "a\tb\nc"
    assert printable(printable(hostile)) == printable(hostile)
    xml = junit_xml("s", [{"name": hostile, "classname": "c", "time": 1, "verdict": "fail",
                           "message": hostile, "detail": hostile + "<script>"}])
    assert "\x1b" not in xml and "\x07" not in xml and "\x00" not in xml
    assert "&lt;script&gt;" in xml


def test_printable_escapes_every_control_format_and_separator_character():
    """Every Cc, Cf, Cs, Zl and Zp character this Python knows, and every noncharacter, is
    escaped; nothing printable() escapes is printable to Python (its fast path relies on it)."""
    import unicodedata

    from harness.report.model import _TABLE, printable

    for code in range(0x110000):
        char = chr(code)
        category = unicodedata.category(char)
        must = category in ("Cc", "Cf", "Cs", "Zl", "Zp") or (code & 0xFFFE) == 0xFFFE or 0xFDD0 <= code <= 0xFDEF
        if char in "\t\n":
            continue
        if must:
            assert code in _TABLE and printable(char).startswith("\\"), (hex(code), category)
        if code in _TABLE:   # also Unicode 15's format characters, unassigned to this Python
            assert not char.isprintable(), (hex(code), category)


def test_selftest_judge_rejects_wrong_kind_and_corrupted_titles():
    from harness.selftest import judge, load_cases

    cases = {c.name: c for c in load_cases()}
    assert set(cases) >= {"clean", "abba", "hung-task", "soft-lockup", "rcu-stall", "panic"}
    good = RunRecord.from_json({"verdict": "fail", "reports": [
        {"kind": "rcu-stall", "title": "INFO: rcu detected stall in f", "primary": True, "corrupted": False}]})
    assert judge(cases["rcu-stall"], good)["ok"]
    corrupted = RunRecord.from_json({"verdict": "fail", "reports": [
        {"kind": "rcu-stall", "title": "INFO: rcu detected stall in corrupted", "primary": True, "corrupted": True}]})
    assert not judge(cases["rcu-stall"], corrupted)["ok"]
    assert not judge(cases["rcu-stall"], corrupted, "x86_64")["ok"]
    assert judge(cases["rcu-stall"], corrupted, "aarch64")["ok"]   # no remote backtrace on arm64 6.1
    assert not judge(cases["hung-task"], corrupted, "aarch64")["ok"]
    assert not judge(cases["abba"], good)["ok"]
    assert judge(cases["clean"], RunRecord.from_json({"verdict": "pass", "reports": []}))["ok"]
    assert not judge(cases["clean"], good)["ok"]


def test_selftest_title_prefix_can_differ_per_arch():
    from harness.selftest import judge, load_cases

    case = {c.name: c for c in load_cases()}["null-deref"]

    def data(title):
        return RunRecord.from_json({"verdict": "fail", "reports": [
            {"kind": "oops", "title": title, "primary": True, "corrupted": False}]})

    null = data("BUG: unable to handle kernel NULL pointer dereference in null_thread")
    paging = data("BUG: unable to handle kernel paging request in null_thread")
    assert judge(case, null, "x86_64")["ok"] and not judge(case, paging, "x86_64")["ok"]
    # s390 has its lowcore at 0 and no NULL wording: the override applies there only
    assert judge(case, paging, "s390x")["ok"] and not judge(case, null, "s390x")["ok"]
    assert judge(case, paging, "s390x")["expected"]["title"].endswith("paging request in ")
    # 32-bit Arm with CPU_SW_DOMAIN_PAN: the user-domain access faults first
    unhandled = data("Unhandled fault in null_thread")
    assert judge(case, unhandled, "arm")["ok"] and not judge(case, unhandled, "aarch64")["ok"]
