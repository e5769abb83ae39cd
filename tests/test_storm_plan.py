"""Storm plans, op-count lines and lock coverage, without a guest."""
import dataclasses
import shutil
import subprocess

import pytest

from harness import configs, storm
from harness.errors import ConfigError

GUEST_INIT = configs.REPO_ROOT / "guest" / "init"



def _busybox() -> str:
    """The host's busybox, to run storm-run's shell and awk as the guest does."""
    busybox = shutil.which("busybox")
    if not busybox:
        pytest.skip("no busybox on this host (Debian: busybox-static)")
    return busybox

LOCK_STAT = """lock_stat version 0.4
-----------------------------------------------------------------------------------------------------------------
                              class name    con-bounces    contentions   waittime-min   waittime-max waittime-total   waittime-avg    acq-bounces   acquisitions   holdtime-min   holdtime-max holdtime-total   holdtime-avg
-----------------------------------------------------------------------------------------------------------------

                      &mm->mmap_lock-W:            12             14           0.40         120.00         900.10          64.29            300           5000           0.10         200.00       30000.00           6.00
                      &mm->mmap_lock-R:             5              6           0.30          90.00         100.00          16.67            200           7000           0.10         100.00       20000.00           2.86
                      ---------------
                      &mm->mmap_lock             10          [<0000000012345678>] do_user_addr_fault+0x1c6/0x6a0
.............................................................................................................
                             swap_lock:             0              0           0.00           0.00           0.00           0.00             10            120           0.20          10.00         100.00           0.83
                    mm_all_locks_mutex:             0              0           0.00           0.00           0.00           0.00              1             33           1.00          50.00         200.00           6.06
"""


def test_plan_lines_give_swap_its_devices_and_priorities():
    spec = configs.load_storm("seed-paths")
    lines = storm.plan_lines(spec, 30, 7, ["/dev/vda", "/dev/vdb", "/dev/vdc"])
    assert lines[0].startswith("mmstress swap --duration 30 --seed 7001 --dev /dev/vda:10 --dev /dev/vdb:5")
    assert lines[0].endswith("--file /mnt/swapfs/swapfile0:16:5 --file /mnt/swapfs/swapfile1:16:2 --mkswap")
    assert all(" --duration 30 " in line for line in lines)
    assert len({line.split("--seed ")[1].split()[0] for line in lines}) == len(lines), "seeds differ"


def test_parse_counts_and_failures():
    output = ("noise\nok 1 swap # swapon=12 swapoff=11 swapoff_enomem=1\r\n"
              "[   12.0] kernel line\n"
              "not ok 1 hog # reason=\"pattern mismatch\" touched=99\n"
              "ok 1 mmap # mprotect=5\nok 1 mmap # mprotect=6\nok 0 module # gup_pages=40 mode=x\n")
    counts, failures = storm.parse_counts(output)
    assert counts["swap"] == {"swapon": 12, "swapoff": 11, "swapoff_enomem": 1}
    assert counts["hog"] == {"reason": "pattern mismatch", "touched": 99}
    assert counts["mmap.2"] == {"mprotect": 6}
    assert counts["module"] == {"gup_pages": 40, "mode": "x"}
    assert failures == ["hog: pattern mismatch"]


def test_a_stressor_without_a_result_line_is_a_failure_not_a_pass():
    """A plan line whose mmstress never printed its KTAP line (its exec failed, or it
    died) fails the storm, naming what it said; a command's line (stress-ng) prints
    no KTAP line of its own and is not asked for one."""
    spec = dataclasses.replace(configs.load_storm("seed-paths"), stressors=(
        configs.StressorSpec("swap", (), 1), configs.StressorSpec("mmap", (), 2),
        configs.StressorSpec("", (), 1, command="stress-ng --swap 1")))
    names = storm.stressor_names(spec)
    output = ("ok 1 swap # swapon=1\nok 1 mmap # maps=3\n"
              "# stressor 3: /bin/storm-run: exec: line 224: mmstress: Cannot allocate memory\n")
    counts, failures = storm.parse_counts(output)
    assert failures == []
    assert storm.missing_results(spec, names, counts, output) == [
        "mmap.2: no result line (/bin/storm-run: exec: line 224: mmstress: Cannot allocate memory)"]
    counts["mmap.2"] = {}
    assert storm.missing_results(spec, names, counts, output) == []


def test_lock_coverage_sums_read_and_write_and_flags_missing_targets():
    classes = storm.parse_lock_stat(LOCK_STAT)
    assert classes["&mm->mmap_lock"] == {"acquisitions": 12000, "contentions": 20}
    coverage = storm.lock_coverage(classes, 100, 250, storm.lock_targets())
    assert coverage["targets"]["mmap_lock"] == {"acquisitions": 12000, "contentions": 20,
                                                "classes": ["&mm->mmap_lock"]}
    assert coverage["targets"]["mm_all_locks_mutex"]["acquisitions"] == 33
    assert "mmlist_lock" in coverage["never_taken"]
    assert "swap_lock" not in coverage["never_taken"]
    assert coverage["new_dependency_chains"] == 150


def test_empty_lock_stat_is_unavailable_not_never_taken():
    coverage = storm.lock_coverage({}, None, None, storm.lock_targets())
    assert coverage["available"] is False and coverage["never_taken"] == []
    assert "lockdep is off" in coverage["unavailable_reason"]


def test_lock_targets_default_and_per_storm():
    from harness.errors import ConfigError

    default = storm.lock_targets()
    assert "mmap_lock" in default and "khugepaged_mm_lock" not in default
    default = configs.load_storm("swapoff-fork-mmap")
    assert "khugepaged_mm_lock" in storm.lock_targets(names=default.lock_targets)
    try:
        storm.lock_targets(names=("no_such_lock",))
    except ConfigError as exc:
        assert "no_such_lock" in str(exc)
    else:
        raise AssertionError("unknown lock target accepted")


def test_swap_files_get_a_filesystem_disk_and_a_device_in_run_env():
    spec = configs.load_storm("seed-paths")
    assert storm.swapfs_size_mb(spec) == 2 * 16 + storm.SWAPFS_SLACK_MB
    env = storm.run_env(spec, 30, 1, "/dev/vdd")
    assert 'SWAPFS_FILES="/mnt/swapfs/swapfile0:16 /mnt/swapfs/swapfile1:16"\n' in env
    assert "SWAPFS_DEV=/dev/vdd\n" in env and "SWAPFS_MOUNT=/mnt/swapfs\n" in env and "HEARTBEAT_S=10\n" in env
    assert storm.swapfs_size_mb(configs.load_storm("selftest")) == 0
    assert "DISKS=4\n" in env, "three swap disks and the swap-file disk, for storm-run to find by serial"


def test_classes_acquired_counts_each_class_once_with_busybox_awk(tmp_path):
    """The guest's busybox awk over a lock_stat: R and W of a class count once,
    contention-point lines and classes without acquisitions not at all."""
    busybox = _busybox()
    idle = "                    idle_lock:" + "            0" * 12 + "\n"
    spaced = "       (work_completion)(&(&wb->dwork)->work):" + "            1" * 12 + "\n"
    path = tmp_path / "lock_stat"
    path.write_text(LOCK_STAT + idle + spaced)
    out = subprocess.run([busybox, "sh", str(GUEST_INIT / storm.CLASSES_CMD), str(path)], capture_output=True,
                         text=True, check=True).stdout
    classes = storm.classes_acquired("noise\n" + out)
    assert {name: v["acquisitions"] for name, v in classes.items()} == {
        "&mm->mmap_lock": 5000 + 7000, "swap_lock": 120, "mm_all_locks_mutex": 33,
        "(work_completion)(&(&wb->dwork)->work)": 1}
    assert classes["&mm->mmap_lock"]["contentions"] == 14 + 6
    # The table is the one parse_lock_stat reads from the whole file.
    assert classes == {k: v for k, v in storm.parse_lock_stat(path.read_text()).items()
                       if v["acquisitions"] or v["contentions"]}
    figures = storm.class_figures(classes)
    assert figures["classes_acquired"] == 4
    assert figures["top_classes"][0] == {"class": "&mm->mmap_lock", "acquisitions": 12000}
    assert [c["class"] for c in figures["top_classes"]][1:3] == ["swap_lock", "mm_all_locks_mutex"]
    # lock-classes.txt: the same table, busiest first, one class a line
    from harness.lock_figures import lock_classes_text
    lines = lock_classes_text(classes).splitlines()
    assert lines[0] == "12000\t20\t&mm->mmap_lock" and len(lines) == 4
    assert lines[-1] == "1\t" + str(classes["(work_completion)(&(&wb->dwork)->work)"]["contentions"]) \
        + "\t(work_completion)(&(&wb->dwork)->work)"


def test_a_target_name_covers_every_class_lockdep_gives_it():
    names = ("ptlock_ptr(page)", "&memcg->deferred_split_queue.split_queue_lock")
    assert storm.class_matches("ptlock_ptr(page)", names)
    assert storm.class_matches("ptlock_ptr(page)#2", names) and storm.class_matches("ptlock_ptr(page)#3/1", names)
    assert not storm.class_matches("ptlock_ptr(page)x", names) and not storm.class_matches("ptlock_ptr", names)
    # lock_stat cuts long names (37 characters, 35 with a #version)
    assert storm.class_matches("&memcg->deferred_split_queue.split_qu", names)
    assert storm.class_matches("&memcg->deferred_split_queue.spli#2", names)
    assert not storm.class_matches("&memcg->deferred_split_queue.other", names)


def test_a_shared_name_counts_only_where_it_nests_in_its_after_class():
    targets = storm.lock_targets(names=("swap_device_lock", "split_pte_lock"))
    assert targets["swap_device_lock"].after == "swap_lock"
    classes = {"&p->lock": {"acquisitions": 5000, "contentions": 0},     # seq_file's mutex
               "&p->lock#2": {"acquisitions": 180000, "contentions": 9},  # swap_info_struct's
               "ptlock_ptr(page)": {"acquisitions": 10, "contentions": 0},
               "ptlock_ptr(page)#2": {"acquisitions": 1000, "contentions": 1}}
    coverage = storm.lock_coverage(classes, None, None, targets, nested={"swap_lock": {"&p->lock#2", "x"}})
    assert coverage["targets"]["swap_device_lock"] == {"acquisitions": 180000, "contentions": 9,
                                                       "classes": ["&p->lock#2"]}
    assert coverage["targets"]["split_pte_lock"]["acquisitions"] == 1010
    # Nothing seen under swap_lock: the shared name alone is not enough.
    coverage = storm.lock_coverage(classes, None, None, targets, nested={})
    assert coverage["targets"]["swap_device_lock"]["acquisitions"] == 0
    assert "swap_device_lock" in coverage["never_taken"]


LOCKDEP = """all lock classes:
00000000c3d1a2b0 FD:    1 BD:    1 +.+.: swapon_mutex
 -> [00000000a1b2c3d4] &p->lock

00000000d1e2f3a4 FD:    3 BD:    2 +.+.: swap_lock
 -> [00000000a1b2c3d4] &p->lock#2
 -> [0000000011223344] &((cluster_info + ci)->lock)#2

00000000abcdef01 FD:    1 BD:    5 ++++: &mm->mmap_lock
 -> [0000000099887766] ptlock_ptr(page)#2
"""


def test_nested_classes_read_from_proc_lockdep_with_busybox_awk(tmp_path):
    from harness.channel.base import CommandResult
    busybox = _busybox()
    path = tmp_path / "lockdep"
    path.write_text(LOCKDEP)

    class Local:
        """The guest's shell, here: busybox sh on the host over a recorded /proc/lockdep."""
        commands = 0

        def run(self, command, timeout):
            self.commands += 1
            assert command.startswith(storm.NESTED_CMD + " ")
            command = (f"LOCKDEP={path} WANT={tmp_path / 'want'} {busybox} sh {GUEST_INIT / storm.NESTED_CMD}"
                       + command[len(storm.NESTED_CMD):])
            out = subprocess.run([busybox, "sh", "-c", command], capture_output=True, text=True, timeout=timeout)
            return CommandResult(out.returncode, out.stdout, 0.0)
    shell = Local()
    wanted = {"swap_lock", "&mm->mmap_lock", "&((cluster_info + ci)->lock)#2", "no_such_class"}
    assert storm.nested_under(shell, wanted, 10) == {
        "swap_lock": {"&p->lock#2", "&((cluster_info + ci)->lock)#2"},
        "&mm->mmap_lock": {"ptlock_ptr(page)#2"},
        "&((cluster_info + ci)->lock)#2": set(), "no_such_class": set()}
    assert shell.commands == 1, "one read of /proc/lockdep for every class"


STORM_RUN = GUEST_INIT / "storm-run"


def _storm_run_block(first: str, last: str) -> str:
    """The lines of guest/init/storm-run from the one starting @first through
    the next line that is @last, to run on the host."""
    text = STORM_RUN.read_text()
    start = text.index(first)
    return text[start:text.index(f"\n{last}\n", start) + len(last) + 2]


def _storm_run_functions(*names: str) -> str:
    """The shell functions of guest/init/storm-run by name, to run on the host."""
    import re
    text = STORM_RUN.read_text()
    out = []
    for name in names:
        match = re.search(rf"^{name}\(\) {{\n.*?^}}\n", text, re.M | re.S)
        assert match, f"storm-run has no function {name}"
        out.append(match.group(0))
    return "".join(out)


def test_cpu_report_splits_the_storm_and_names_kernel_threads_with_busybox(tmp_path):
    """storm-run's cpu line: /proc/stat's jiffies since the start in ms, and
    the kernel threads (ppid 2) summed by name without digits or /suffix,
    busiest first; user processes, even with ') ' in their name, are not
    kernel threads."""
    busybox = _busybox()
    proc = tmp_path / "proc"
    proc.mkdir()
    (proc / "stat").write_text("cpu  300 20 900 5000 40 3 2 0 0 0\ncpu0 1 2 3 4 5 6 7\n")

    def task(pid: int, comm: str, ppid: int, utime: int, stime: int) -> None:
        (proc / str(pid)).mkdir()
        fields = ["S", str(ppid)] + ["0"] * 9 + [str(utime), str(stime)] + ["0"] * 30
        (proc / str(pid) / "stat").write_text(f"{pid} ({comm}) {' '.join(fields)}\n")
    task(1, "init", 0, 5, 5)
    task(2, "kthreadd", 0, 0, 1)
    task(10, "mmlock-gup/0", 2, 0, 40)
    task(11, "mmlock-gup/1", 2, 0, 60)
    task(12, "kworker/0:1H", 2, 0, 30)
    task(13, "kswapd0", 2, 1, 9)
    task(14, "kdamond.0", 2, 0, 0)
    task(40, "evil) S 2", 1, 900, 900)
    script = _storm_run_functions("cpu_ticks", "cpu_report") + 'cpu_report "100 400 4000 0 0"\n'
    out = subprocess.run([busybox, "sh", "-c", script], env={"PROC": str(proc), "PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True, check=True).stdout.strip()
    counts, failed = storm.parse_counts(out)
    assert not failed
    assert counts["cpu"] == {"user_ms": 2200, "sys_ms": 5000, "idle_ms": 10000, "iowait_ms": 400,
                             "irq_ms": 50, "kthread_mmlock_gup_ms": 1000, "kthread_kworker_ms": 300,
                             "kthread_kswapd_ms": 100}
    assert list(counts["cpu"])[5:] == ["kthread_mmlock_gup_ms", "kthread_kworker_ms", "kthread_kswapd_ms"]


def test_phases_clock_is_milliseconds_since_boot(tmp_path):
    """storm-run's phases line subtracts now_ms() readings: /proc/uptime's
    seconds with two decimals -> whole milliseconds, with busybox awk."""
    busybox = _busybox()
    proc = tmp_path / "proc"
    proc.mkdir()
    (proc / "uptime").write_text("123456.78 240000.01\n")
    out = subprocess.run([busybox, "sh", "-c", _storm_run_functions("now_ms") + "now_ms\n"],
                         env={"PROC": str(proc), "PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True, check=True).stdout
    assert out == "123456780\n"


def test_ready_marker_waits_for_the_whole_release():
    """A slow guest's console comes in pieces: the ready line cut after
    "kernel=6.1" must not match, or a 6.12 kernel is taken for 6.1 (and the
    targets 6.12 no longer has are reported never taken)."""
    from harness.run import READY_RE
    assert READY_RE.search(b"MMLOCK-HARNESS: ready kernel=6.1") is None
    match = READY_RE.search(b"MMLOCK-HARNESS: ready kernel=6.12.118 arch=riscv64 cpus=2\r\n")
    assert match and match.group(1) == b"6.12.118"


def _run_steps(chains_body: str) -> str:
    """storm-run's chain sampling for the module and two stressors with a
    1 s stagger and the given chains() (the host has no /proc/lockdep_stats)."""
    busybox = _busybox()
    block = _storm_run_block("sampling=1\ntook=0\nsample() {", "done")
    script = (_storm_run_functions("now_ms") + f"chains() {{ {chains_body}; }}\nTMPF=$(mktemp)\n"
              "STAGGER_S=1\nc0=100\nt_first=$(now_ms)\nsteps='0:module 1:swap 2:hog'\n" + block
              + 'rm -f "$TMPF"\n')
    return subprocess.run([busybox, "sh", "-c", script], env={"PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, check=True, timeout=60).stdout


def test_staggered_steps_sample_chains_between_starts():
    # $(chains) is a subshell: the count grows through a file.
    out = _run_steps('echo >> "$TMPF"; echo $((100 + 7 * $(wc -l < "$TMPF")))')
    steps = storm.parse_mode_chains(out, ["swap", "hog"])
    assert [(s["mode"], s["new_chains"]) for s in steps] == [("module", 7), ("swap", 7), ("hog", 7)]
    assert storm.chain_sampling_stopped(out, ["swap", "hog"], 1) == ""


def test_a_slow_chain_sample_stops_the_sampling_not_the_schedule():
    """A sample longer than the stagger is the last one (it no longer fits
    between two starts), and the harness says why."""
    out = _run_steps("sleep 1.2; echo 150")
    steps = storm.parse_mode_chains(out, ["swap", "hog"])
    assert [(s["mode"], s["new_chains"]) for s in steps] == [("module", 50)]
    why = storm.chain_sampling_stopped(out, ["swap", "hog"], 1)
    assert why.startswith("after module: one /proc/lockdep_stats read took ") and "than the 1s stagger" in why
    coverage = storm.lock_coverage({}, 1, 2, {}, chains_stopped=why)
    assert coverage["mode_chains_stopped"] == why


def test_staggered_lines_start_on_schedule_from_processes_forked_up_front(tmp_path):
    """Every plan line is forked at once and sleeps until its start: line i
    starts (i - 1 + module) stagger seconds after the first, whatever the
    lines before it cost."""
    busybox = _busybox()
    block = _storm_run_block("t_first=$(now_ms)\ni=0\n", 'done < "$plan"').replace("/tmp/stressor.", f"{tmp_path}/stressor.")
    plan = tmp_path / "plan"
    plan.write_text("cat /proc/uptime\n# a comment\n\ncat /proc/uptime\ncat /proc/uptime\n")
    script = (_storm_run_functions("now_ms") + f"STAGGER_S=1\nmodule_up=1\nplan={plan}\n" + block
              + 'for pid in $pids; do wait "$pid"; done\necho "first=$t_first steps=$steps"\n')
    out = subprocess.run([busybox, "sh", "-c", script], env={"PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True, check=True, timeout=60).stdout
    first = int(out.split("first=")[1].split()[0])
    assert out.strip().endswith("steps=0:module 1:cat 2:cat 3:cat")
    starts = [float((tmp_path / f"stressor.{i}.out").read_text().split()[0]) * 1000 - first for i in (1, 2, 3)]
    for i, started in enumerate(starts, 1):
        assert i * 1000 - 50 <= started <= i * 1000 + 600, starts


def test_inject_kinds_are_the_guest_injectors_and_the_modules(tmp_path):
    """INJECT= kinds come from guest/init/mmlock-inject; each module kind is one mmlock.c knows,
    and the injector writes the kind (and its seconds) where the module reads it."""
    from harness import plan

    module = (configs.REPO_ROOT / "guest" / "module" / "mmlock.c").read_text()
    assert plan.INJECTIONS == ("sysrq-crash",) and "abba" in plan.MODULE_INJECTIONS
    for kind in plan.MODULE_INJECTIONS:
        assert f'"{kind}"' in module, kind
    assert plan.guest_command_for("hung-task:30") == "mmlock-inject hung-task 30"
    assert plan.guest_command_for("sysrq-crash") == "mmlock-inject sysrq-crash"
    with pytest.raises(ConfigError, match="valid: sysrq-crash, abba"):
        plan.guest_command_for("sysrq-crash:5")
    script = (GUEST_INIT / "mmlock-inject").read_text().replace("/sys/kernel/debug/mmlock/inject",
                                                                  str(tmp_path / "inject"))
    (tmp_path / "inject-script").write_text(script.replace("insmod ", "true "))
    proc = subprocess.run([_busybox(), "sh", str(tmp_path / "inject-script"), "hung-task", "30"],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and (tmp_path / "inject").read_text() == "hung-task 30\n", proc.stderr
    proc = subprocess.run([_busybox(), "sh", str(tmp_path / "inject-script"), "nope"], capture_output=True, text=True)
    assert proc.returncode == 2 and "valid: sysrq-crash abba" in proc.stderr
