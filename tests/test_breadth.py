"""The default storm's breadth, its data and harness side, without a guest: the
kernel options each mode needs (checked before booting), modes an arch cannot
have left out, staggered plans and per-mode chains, swap backends (zram,
zswap, ext4 swap files)."""
import dataclasses
import struct
from pathlib import Path

import pytest

from harness import configs, qemu, requires, storm
from harness.errors import ConfigError

# A kernel with the seed paths' options only (tinyconfig + base + lockdep.config,
# e.g. a KERNEL_SRC tree whose own config lacks the other subsystems).
LOCKDEP_ONLY = """CONFIG_SWAP=y
CONFIG_SHMEM=y
CONFIG_TMPFS=y
CONFIG_MODULES=y
CONFIG_DEBUG_FS=y
CONFIG_EXT2_FS=y
CONFIG_UNIX=y
CONFIG_INET=y
CONFIG_UNIX98_PTYS=y
CONFIG_EPOLL=y
CONFIG_FUTEX=y
CONFIG_SYSVIPC=y
CONFIG_PROC_PAGE_MONITOR=y
# CONFIG_CROSS_MEMORY_ATTACH is not set
# CONFIG_TRANSPARENT_HUGEPAGE is not set
# CONFIG_USERFAULTFD is not set
# CONFIG_CGROUPS is not set
"""


DEFAULT = "swapoff-fork-mmap"


def _profile_options(name: str = "lockdep") -> str:
    return "\n".join(p.read_text() for p in configs.load_profile(name).fragments)


def test_every_mode_of_every_storm_is_listed_in_requires_yaml():
    reqs = requires.load()
    for name in configs.storm_names():
        spec = configs.load_storm(name)
        requires.unmet(spec, "", reqs)     # raises for a mode or feature requires.yaml lacks
    listed = set(reqs.modes)
    main_c = (Path(configs.REPO_ROOT) / "guest/stressors/main.c").read_text()
    assert all(f'{{ "{mode}", mode_' in main_c for mode in listed), "requires.yaml names a mode mmstress lacks"


def test_default_storm_on_a_seed_only_kernel_names_each_mode_and_option():
    spec = configs.load_storm(DEFAULT)
    problems = dict(requires.unmet(spec, LOCKDEP_ONLY, requires.load()))
    assert problems["mode uffd"] == ["CONFIG_USERFAULTFD"]
    assert problems["mode memcg"] == ["CONFIG_CGROUPS", "CONFIG_MEMCG"]
    assert problems["mode thp"] == ["CONFIG_TRANSPARENT_HUGEPAGE"]
    assert problems["zram"] == ["CONFIG_ZRAM"] and problems["zswap"] == ["CONFIG_ZSWAP"]
    assert problems["swap_files on ext4"] == ["CONFIG_EXT4_FS"]
    assert "mode swap" not in problems and "mode procwalk" not in problems and "mode hog" not in problems
    assert "mode uaccess" not in problems   # base.config's options: every kernel the harness builds
    problems = dict(requires.unmet(spec, LOCKDEP_ONLY.replace("CONFIG_UNIX=y", ""), requires.load()))
    assert problems["mode uaccess"] == ["CONFIG_UNIX"]


@pytest.mark.parametrize("profile", ["lockdep", "kasan"])
def test_every_profile_has_everything_the_default_storm_needs(profile):
    base = (configs.CONFIG_DIR / "kernel/base.config").read_text()
    assert requires.unmet(configs.load_storm(DEFAULT), base + _profile_options(profile), requires.load()) == []


def test_check_message_and_hints():
    spec = configs.load_storm(DEFAULT)
    # No profile but the one in use: the hint is the seed storm, which runs there.
    with pytest.raises(ConfigError) as info:
        requires.check(spec, LOCKDEP_ONLY, "tree:/src/linux with profile lockdep", profiles={})
    message = str(info.value)
    assert message.startswith(f"storm '{DEFAULT}' cannot run on tree:/src/linux with profile lockdep")
    assert "\n  mode uffd: CONFIG_USERFAULTFD not set" in message
    assert "\n  mode oom: CONFIG_CGROUPS, CONFIG_MEMCG not set" in message
    assert message.endswith("the seed-paths storm runs on this kernel: --storm seed-paths")
    requires.check(configs.load_storm("seed-paths"), LOCKDEP_ONLY, "k", profiles={})
    # A profile that has it all is named first.
    with pytest.raises(ConfigError, match="the lockdep profile asks for them: --profile lockdep$"):
        requires.check(spec, LOCKDEP_ONLY, "k", profiles={"lockdep": _profile_options()})
    # Neither: no hint.
    without_swap = LOCKDEP_ONLY.replace("CONFIG_SWAP=y", "# CONFIG_SWAP is not set")
    with pytest.raises(ConfigError, match="mode swap: CONFIG_SWAP not set\n") as info:
        requires.check(spec, without_swap, "k", profiles={})
    assert "--storm" not in str(info.value)


def _arch(name: str, **changes) -> configs.Arch:
    return dataclasses.replace(configs.load_arch(name), **changes)


def test_modes_an_arch_cannot_have_are_left_out_with_their_targets():
    spec = configs.load_storm(DEFAULT)
    arch = _arch("aarch64", unavailable=("CONFIG_TRANSPARENT_HUGEPAGE",), numa_max_nodes=0)
    adapted = requires.for_arch(spec, arch)
    left = dict(adapted.left_out)
    assert set(left) == {"thp", "numa"}
    assert left["thp"] == "CONFIG_TRANSPARENT_HUGEPAGE unavailable on aarch64 (aarch64.yaml: kernel.unavailable)"
    assert left["numa"] == "needs 2 NUMA nodes; the aarch64 machine gives one (aarch64.yaml: qemu.numa)"
    assert [s.mode for s in adapted.stressors] == [s.mode for s in spec.stressors if s.mode not in left]
    assert adapted.numa_nodes == 1
    # thp's own targets go with it; the rest stay.
    assert "khugepaged_mm_lock" not in adapted.lock_targets and "thp_split_queue_lock" not in adapted.lock_targets
    assert "ksm_mmlist_lock" in adapted.lock_targets and "swapon_mutex" in adapted.lock_targets
    # A storm that wants the nodes without a numa mode still cannot have them.
    plain = dataclasses.replace(spec, stressors=tuple(s for s in spec.stressors if s.mode != "numa"))
    riscv = configs.load_arch("riscv64")
    assert requires.for_arch(plain, riscv).numa_nodes == 2
    with pytest.raises(ConfigError, match="wants 2 NUMA nodes; the riscv64 machine"):
        qemu.numa_args(riscv, requires.for_arch(plain, riscv).numa_nodes, plain.name)
    # The kernel check no longer asks for what was left out.
    assert "mode thp" not in dict(requires.unmet(adapted, LOCKDEP_ONLY, requires.load()))
    # An arch that has everything and gives the nodes keeps the storm as it is.
    assert requires.for_arch(spec, configs.load_arch("x86_64")) is spec
    # One alternative of an "A|B" option still possible: the mode stays.
    assert "fork" not in dict(requires.for_arch(spec, _arch("x86_64", unavailable=("CONFIG_SHMEM",))).left_out)
    assert "fork" in dict(requires.for_arch(
        spec, _arch("x86_64", unavailable=("CONFIG_SHMEM", "CONFIG_TMPFS"))).left_out)


def test_left_out_modes_reach_the_run_request():
    from harness.run import RunRequest, load_request
    arch, _, spec, _ = load_request(RunRequest(arch="arm"))     # no LPAE, no NUMA: the arch data says so
    assert {mode: why.split(" unavailable")[0] for mode, why in spec.left_out} == {
        "thp": "CONFIG_TRANSPARENT_HUGEPAGE", "numa": "CONFIG_NUMA"}
    assert "numa" not in storm.stressor_names(spec) and "thp" not in storm.stressor_names(spec)
    assert qemu.numa_args(arch, spec.numa_nodes, spec.name) == ()
    arch, _, spec, _ = load_request(RunRequest(arch="riscv64"))  # NUMA kernel, no qemu.numa
    assert dict(spec.left_out) == {
        "numa": "needs 2 NUMA nodes; the riscv64 machine gives one (riscv64.yaml: qemu.numa)"}


def test_alternatives_and_modules():
    spec = configs.load_storm("seed-paths")     # ext2 swap files
    reqs = requires.load()
    without_ext2 = LOCKDEP_ONLY.replace("CONFIG_EXT2_FS=y", "# CONFIG_EXT2_FS is not set")
    assert requires.unmet(spec, without_ext2, reqs) == [
        ("swap_files on ext2", ["CONFIG_EXT2_FS|CONFIG_EXT4_USE_FOR_EXT2"])]
    assert requires.unmet(spec, without_ext2 + "CONFIG_EXT4_USE_FOR_EXT2=y\n", reqs) == []
    # A modular option counts: the guest could load it.
    assert requires.unmet(spec, LOCKDEP_ONLY.replace("CONFIG_EXT2_FS=y", "CONFIG_EXT2_FS=m"), reqs) == []


def test_unlisted_mode_and_bad_option_name(config_dir):
    spec = configs.load_storm(DEFAULT)
    odd = dataclasses.replace(spec, stressors=(configs.StressorSpec("newmode", (), 1),))
    with pytest.raises(ConfigError, match="mode 'newmode' of storm 'swapoff-fork-mmap' is not listed under modes"):
        requires.unmet(odd, "", requires.load())
    path = config_dir / "kernel/requires.yaml"
    path.write_text(path.read_text().replace("uffd: [CONFIG_USERFAULTFD]", "uffd: [USERFAULTFD]"))
    with pytest.raises(ConfigError, match=r"requires.yaml:\d+: key 'modes.uffd': not a kconfig option name"):
        requires.load(config_dir)


def test_default_plan_starts_every_mode_at_once():
    lines = storm.plan_lines(configs.load_storm(DEFAULT), 60, 1, ["/dev/vda", "/dev/vdb", "/dev/vdc"])
    assert len(lines) >= 14 and all(" --duration 60 " in line for line in lines)
    assert "STAGGER_S=0\n" in storm.run_env(configs.load_storm(DEFAULT), 60, 1, "/dev/vdd")


def test_staggered_plan_ends_together_and_swaps_on_zram():
    spec = dataclasses.replace(configs.load_storm(DEFAULT), stagger_s=2)   # STAGGER=2
    lines = storm.plan_lines(spec, 60, 1, ["/dev/vda", "/dev/vdb", "/dev/vdc"])
    durations = [int(line.split("--duration ")[1].split()[0]) for line in lines]
    assert durations[0] == 60 and durations == [60 - 2 * i for i in range(len(lines))]
    assert " --dev /dev/zram0:20 " in lines[0]
    assert "--file /mnt/swapfs/swapfile0:16:5" in lines[0]
    short = storm.plan_lines(spec, 10, 1, ["/dev/vda", "/dev/vdb", "/dev/vdc"])
    assert [int(line.split("--duration ")[1].split()[0]) for line in short][-1] == storm.MIN_STAGGERED_S
    assert storm.plan_lines(configs.load_storm("seed-paths"), 30, 1, ["/dev/vda"])[-1].count(
        "--duration 30 ") == 1


def test_zswap_zram_ext4_and_stagger_reach_the_guest():
    spec = configs.load_storm(DEFAULT)
    assert storm.kernel_append(spec).endswith("zswap.enabled=1 zswap.max_pool_percent=1 zswap.zpool=zbud")
    assert "zswap" not in storm.kernel_append(configs.load_storm("seed-paths"))
    env = storm.run_env(dataclasses.replace(spec, stagger_s=2), 60, 1, "/dev/vdd")
    assert "ZRAM_MB=16\n" in env and "ZSWAP=1\n" in env and "STAGGER_S=2\n" in env
    assert 'ZSWAP_ZPOOLS="zbud zsmalloc"\n' in env and "ZSWAP_SWITCH_S=10\n" in env
    assert "SWAPFS_TYPE=ext4\n" in env


def test_bad_swap_backend_values(config_dir):
    path = config_dir / f"storms/{DEFAULT}.yaml"
    text = path.read_text()
    path.write_text(text.replace("fs: ext4", "fs: btrfs"))
    with pytest.raises(ConfigError, match="key 'swap.files.fs': fs must be one of ext2, ext4, not 'btrfs'"):
        configs.load_storm(DEFAULT, config_dir)
    path.write_text(text.replace("    priority: 20", "    priority: 20\n    prio: 3"))
    with pytest.raises(ConfigError, match="key 'swap.zram.prio': unknown key"):
        configs.load_storm(DEFAULT, config_dir)
    path.write_text(text.replace("stagger_s: 0", "stagger_s: 99"))
    with pytest.raises(ConfigError, match="key 'stagger_s': must be 0..60"):
        configs.load_storm(DEFAULT, config_dir)


def test_make_swapfs_ext4_on_the_host(tmp_path):
    image = tmp_path / "swapfs.img"
    with open(image, "wb") as handle:
        handle.truncate(16 << 20)
    storm.make_swapfs(image, "ext4", tmp_path / "build.log")
    superblock = image.read_bytes()[1024:2048]
    magic, = struct.unpack_from("<H", superblock, 0x38)
    incompat, = struct.unpack_from("<I", superblock, 0x60)
    assert magic == 0xEF53 and incompat & 0x40, "ext4 with extents"
    assert "mke2fs" in (tmp_path / "build.log").read_text()


STORM_OUTPUT = """MMLOCK-HARNESS: storm-begin duration=60 seed=1
MMLOCK-HARNESS: chains step=0 mode=module before=900 after=1400
MMLOCK-HARNESS: chains step=1 mode=swap before=1400 after=1500
MMLOCK-HARNESS: chains step=2 mode=thp before=1500 after=1720
MMLOCK-HARNESS: chains step=3 mode=uffd before=1720 after=1730
MMLOCK-HARNESS: chains step=end mode=all before=1730 after=2100
ok 1 swap # swapon=3
"""


def test_mode_chains_and_modes_without_their_targets():
    spec = dataclasses.replace(configs.load_storm(DEFAULT), stressors=(
        configs.StressorSpec("swap", (), 1),
        configs.StressorSpec("thp", (), 1, targets=("khugepaged_mm_lock",)),
        configs.StressorSpec("uffd", (), 1, targets=("uffd_fault_wqh",))))
    steps = storm.parse_mode_chains(STORM_OUTPUT, storm.stressor_names(spec))
    assert [(s["mode"], s["new_chains"]) for s in steps] == [
        ("module", 500), ("swap", 100), ("thp", 220), ("uffd", 10), ("all", 370)]
    lock_stat = ("khugepaged_mm_lock:  0  0  0.00  0.00  0.00  0.00  3  40  0.10  1.00  4.00  0.10\n"
                 "&mm->mmap_lock-R:  0  0  0.00  0.00  0.00  0.00  3  4000  0.10  1.00  4.00  0.10\n")
    names = ("mmap_lock", "khugepaged_mm_lock", "uffd_fault_wqh")
    coverage = storm.lock_coverage(storm.parse_lock_stat(lock_stat), 900, 2100, storm.lock_targets(names=names),
                                   ("mmap_lock",),
                                   {"thp": ("khugepaged_mm_lock",), "uffd": ("uffd_fault_wqh",)}, steps)
    assert coverage["never_taken"] == [], "only the storm's own targets count there"
    assert coverage["modes"]["thp"] == {"new_chains": 220, "targets": ["khugepaged_mm_lock"],
                                        "targets_taken": ["khugepaged_mm_lock"]}
    assert coverage["modes"]["uffd"]["targets_taken"] == []
    assert coverage["modes_without_targets"] == ["uffd"]
    assert coverage["modes"]["all"] == {"new_chains": 370}


def test_targets_gone_from_a_kernel_are_not_warnings():
    lock_stat = "&mm->mmap_lock-R:  0  0  0.00  0.00  0.00  0.00  3  4000  0.10  1.00  4.00  0.10\n"
    names = ("mmap_lock", "zswap_tree_lock", "memcg_stats_flush_lock")
    targets = storm.lock_targets(names=names)
    modes = {"memcg": ("memcg_stats_flush_lock",)}
    old = storm.lock_coverage(storm.parse_lock_stat(lock_stat), 1, 2, targets, names, modes,
                              kernel_release="6.1.176")
    assert old["never_taken"] == ["memcg_stats_flush_lock", "zswap_tree_lock"]
    assert old["modes_without_targets"] == ["memcg"] and "not_in_kernel" not in old
    new = storm.lock_coverage(storm.parse_lock_stat(lock_stat), 1, 2, targets, names, modes,
                              kernel_release="6.12.117")
    assert new["never_taken"] == [] and new["modes_without_targets"] == []
    assert sorted(new["not_in_kernel"]) == ["memcg_stats_flush_lock", "zswap_tree_lock"]
    assert "xarray" in new["not_in_kernel"]["zswap_tree_lock"]
    assert storm.release_at_least("6.13.0-rc2+", "6.12") and not storm.release_at_least("6.9.1", "6.12")
    assert not storm.release_at_least("", "6.12")


def test_bad_gone_entry_names_the_file_and_key(config_dir):
    path = config_dir / "locks.yaml"
    path.write_text(path.read_text().replace('gone: {from: "6.12", why:', 'gone: {since: "6.12", why:', 1))
    with pytest.raises(ConfigError, match=r"locks\.yaml:\d+: missing key .targets\.memcg_stats_flush_lock\.gone\.from"):
        storm.lock_targets(config_dir)


def test_repeated_modes_get_the_names_of_their_result_lines():
    spec = dataclasses.replace(configs.load_storm(DEFAULT), stressors=(
        configs.StressorSpec("hog", (), 2), configs.StressorSpec("", (), 1, "stress-ng --vm 1")))
    assert storm.stressor_names(spec) == ["hog", "hog.2", "stress-ng"]
    steps = storm.parse_mode_chains("MMLOCK-HARNESS: chains step=2 mode=hog before= after=\n",
                                    storm.stressor_names(spec))
    assert steps == [{"step": "2", "mode": "hog.2", "new_chains": None}]


def test_numa_nodes_from_the_arch_data(config_dir):
    path = config_dir / "arches/x86_64.yaml"
    arm = configs.load_arch("aarch64", config_dir)   # QEMU's nodes, in the device tree
    assert arm.numa_max_nodes == 2
    assert qemu.numa_args(arm, 1) == ()
    assert qemu.numa_args(arm, 2) == (
        "-object", "memory-backend-ram,id=mem0,size=128M", "-numa", "node,nodeid=0,cpus=0,memdev=mem0",
        "-object", "memory-backend-ram,id=mem1,size=128M", "-numa", "node,nodeid=1,cpus=1,memdev=mem1")
    assert qemu.numa_append(arm, 2) == ""
    arch = configs.load_arch("x86_64", config_dir)   # the kernel's own nodes (no ACPI, no SRAT)
    assert arch.numa_max_nodes == 2
    assert qemu.numa_args(arch, 2) == ()
    assert (qemu.numa_append(arch, 1), qemu.numa_append(arch, 2)) == ("", "numa=fake=2")
    assert qemu.smp_arg(arch) == "2,sockets=2" and qemu.smp_arg(arm) == "2"
    with pytest.raises(ConfigError, match=r"storm 's' wants 3 NUMA nodes; the x86_64 machine \(x86_64.yaml\) "
                                          r"can give at most 2"):
        qemu.numa_args(arch, 3, "s")
    plain = configs.load_arch("s390x")
    if not plain.numa_max_nodes:
        with pytest.raises(ConfigError, match=r"can give none \(no qemu.numa\)"):
            qemu.numa_args(plain, 2, "s")
    path.write_text(path.read_text().replace("max_nodes: 2", "max_nodes: 4"))
    with pytest.raises(ConfigError, match=r"key 'qemu.numa.max_nodes': needs node_args or append, and at most "
                                          r"smp \(2\)"):
        configs.load_arch("x86_64", config_dir)


def test_a_storm_that_wants_numa_needs_it_in_the_kernel():
    spec = dataclasses.replace(configs.load_storm(DEFAULT), numa_nodes=2,
                               stressors=(configs.StressorSpec("numa", (), 1),))
    problems = dict(requires.unmet(spec, "# CONFIG_NUMA is not set\nCONFIG_MIGRATION=y\n", requires.load()))
    assert problems == {"mode numa": ["CONFIG_NUMA"], "numa_nodes": ["CONFIG_NUMA"],
                        "zram": ["CONFIG_ZRAM"], "zswap": ["CONFIG_ZSWAP"],
                        "zswap on zsmalloc": ["CONFIG_ZSMALLOC"], "zswap on zbud": ["CONFIG_ZBUD"],
                        "swap_files on ext4": ["CONFIG_EXT4_FS"],
                        "module_storm": ["CONFIG_MODULES", "CONFIG_DEBUG_FS"]}


def test_readme_documents_every_key_of_the_new_modes():
    """memcg and oom need root and cgroups, numa two nodes: the keys come from the sources."""
    import re

    stressors = configs.REPO_ROOT / "guest/stressors"
    readme = (stressors / "README.md").read_text()
    for mode in ("memcg", "oom", "uffd", "numa", "fork"):
        source = (stressors / f"{mode}.c").read_text()
        table = re.search(r"keys\[K_NR\] = \{(.*?)\};", source, re.S)
        assert table, f"{mode}.c: no keys table"
        keys = re.findall(r'"(\w+)"', table.group(1))
        section = readme.split(f"### {mode}\n", 1)[1].split("\n### ", 1)[0].split("\n## ", 1)[0]
        listed = re.search(r"Keys: `([^`]*)`", section)
        assert listed and listed.group(1).split() == keys, f"{mode}: README Keys differ from {mode}.c"


def test_leave_out_drops_modes_and_parts_and_says_so():
    spec = configs.load_storm(DEFAULT)
    assert spec.module_storm and spec.zram_mb and spec.zswap_pool_percent and spec.swap_files
    narrowed = requires.leave_out(spec, ("zram", "zswap", "module", "swap-files", "thp", "numa"))
    assert (narrowed.zram_mb, narrowed.zswap_pool_percent, narrowed.module_storm, narrowed.swap_files) == (
        0, 0, False, 0)
    assert [s.mode for s in narrowed.stressors] == [
        s.mode for s in spec.stressors if s.mode not in ("thp", "numa")]
    assert dict(narrowed.left_out) == dict.fromkeys(
        ("zram", "zswap", "module", "swap-files", "thp", "numa"), requires.LEFT_OUT_BY_REQUEST)
    # thp's targets go with it; the nodes were only for the numa mode.
    assert "khugepaged_mm_lock" not in narrowed.lock_targets and "swap_lock" in narrowed.lock_targets
    assert narrowed.numa_nodes == 1
    # What the guest is told follows: no zram, no zswap, no module storm.
    assert "zswap" in storm.kernel_append(spec) and "zswap" not in storm.kernel_append(narrowed)
    swap_line = storm.plan_lines(spec, 60, 1, ["/dev/vdb"])[0]
    assert swap_line.startswith("mmstress swap") and "zram" in swap_line and "--file" in swap_line
    swap_line = storm.plan_lines(narrowed, 60, 1, ["/dev/vdb"])[0]
    assert swap_line.startswith("mmstress swap") and "zram" not in swap_line and "--file" not in swap_line
    assert requires.leave_out(spec, ()) is spec
    # An arch's own leave-outs add to the request's.
    arch = _arch("aarch64", unavailable=("CONFIG_TRANSPARENT_HUGEPAGE",))
    both = requires.for_arch(requires.leave_out(spec, ("zram", "ksm")), arch)
    assert set(dict(both.left_out)) == {"zram", "ksm", "thp"}
    assert dict(both.left_out)["thp"].endswith("(aarch64.yaml: kernel.unavailable)")


def test_leave_out_names_what_the_storm_has_when_the_part_is_unknown():
    with pytest.raises(ConfigError) as info:
        requires.leave_out(configs.load_storm("seed-paths"), ("zram", "hog"))
    message = str(info.value)
    assert message.startswith("--leave-out zram: storm seed-paths has no such part; its parts: swap, hog")
    assert "module" in message and "swap-files" in message and "zswap" not in message


def test_leave_out_reaches_the_run_request_and_the_cli():
    from harness.cli import _request, build_parser
    from harness.run import RunRequest, load_request
    _, _, spec, _ = load_request(RunRequest(arch="x86_64", leave_out=("zswap", "oom")))
    assert dict(spec.left_out) == {"zswap": requires.LEFT_OUT_BY_REQUEST, "oom": requires.LEFT_OUT_BY_REQUEST}
    assert spec.zswap_pool_percent == 0 and "oom" not in storm.stressor_names(spec)
    args = build_parser().parse_args(["soak", "--arch", "ppc64le", "--leave-out", "zram, zswap zram"])
    assert _request(args).leave_out == ("zram", "zswap")
    with pytest.raises(ConfigError, match="--leave-out nope: storm swapoff-fork-mmap has no such part"):
        load_request(RunRequest(leave_out=("nope",)))


def test_faults_reach_the_guest_for_the_kinds_asked_only():
    spec = configs.load_storm(DEFAULT)
    knobs = dict(spec.faults)
    assert set(knobs) == {"slab", "page", "io"} and knobs["slab"].ignore_gfp_wait
    env = storm.run_env(spec, 60, 1, "/dev/vdd", ("slab", "io"))
    assert 'FAULTS="slab:failslab:5:10:100000:Y:0 io:fail_make_request:1:100:1000:Y:0"\n' in env
    assert 'FAULTS=""\n' in storm.run_env(spec, 60, 1, "/dev/vdd")
    counts, _ = storm.parse_counts("ok 0 faults # slab=812 slab_times=100000 io=3 io_times=1000\n")
    assert storm.injected_faults(counts) == {"slab": 812, "io": 3}


def test_fault_knobs_out_of_range_and_unknown_kinds(config_dir):
    path = config_dir / f"storms/{DEFAULT}.yaml"
    text = path.read_text()
    path.write_text(text.replace("    probability: 5\n    interval: 10", "    probability: 500\n    interval: 10", 1))
    with pytest.raises(ConfigError, match=r"key 'faults.slab.probability': must be 0..100, got 500"):
        configs.load_storm(DEFAULT, config_dir)
    path.write_text(text.replace("faults:\n  slab:", "faults:\n  disk:\n    times: 3\n  slab:"))
    with pytest.raises(ConfigError, match="key 'faults.disk': unknown key"):
        configs.load_storm(DEFAULT, config_dir)
    with pytest.raises(ConfigError, match="unknown fault kind.s. disk; valid: slab, page, io"):
        configs.with_faults(configs.load_profile("lockdep"), ("disk",))
    faulty = configs.with_faults(configs.load_profile("lockdep"), ("slab",))
    assert faulty.name == "lockdep-faults"
    options = configs.parse_fragment(faulty.fragments[-1].read_text())
    assert {options[o] for o in ("CONFIG_FAILSLAB", "CONFIG_FAIL_PAGE_ALLOC", "CONFIG_FAIL_MAKE_REQUEST",
                                 "CONFIG_FAULT_INJECTION_DEBUG_FS")} == {"y"}


def test_an_injected_failure_is_never_a_report():
    """lib/fault-inject.c's fail_dump(): two lines, and with verbose 2 a dump_stack()."""
    from harness.report import parse_text

    noise = "\n".join([
        "[   31.100000][  T412] FAULT_INJECTION: forcing a failure.",
        "[   31.100001][  T412] name failslab, interval 10, probability 5, space 0, times 99812",
        "[   31.100002][  T412] CPU: 1 PID: 412 Comm: mmstress Not tainted 6.1.176 #1",
        "[   31.100003][  T412] Hardware name: QEMU Standard PC (i440FX + PIIX, 1996)",
        "[   31.100004][  T412] Call Trace:",
        "[   31.100005][  T412]  <TASK>",
        "[   31.100006][  T412]  dump_stack_lvl+0x5b/0x77",
        "[   31.100007][  T412]  should_fail_ex+0x1d5/0x200",
        "[   31.100008][  T412]  should_failslab+0x5/0x10",
        "[   31.100009][  T412]  kmem_cache_alloc+0x54/0x3b0",
        "[   31.100010][  T412]  add_swap_count_continuation+0x3e/0x2b0",
        "[   31.100011][  T412]  copy_pte_range+0x4a1/0x1130",
        "[   31.100012][  T412]  </TASK>",
    ]) + "\n"
    assert parse_text(noise * 3) == []


def test_the_swap_fill_storm_fills_the_highest_area_every_second_cycle():
    spec = configs.load_storm("swap-fill")
    swap_line = storm.plan_lines(spec, 60, 1, ["/dev/vda", "/dev/vdb"])[0]
    assert swap_line.startswith("mmstress swap ") and " --fill 2 " in swap_line
    # areas at several priorities, so several become the one filled
    assert "--dev /dev/zram0:20" in swap_line and "--dev /dev/vda:10" in swap_line
    stressors = (Path(__file__).parent.parent / "guest" / "stressors")
    assert '"swapoff_full"' in (stressors / "swap.c").read_text()
    assert "swapoff_full" in (stressors / "README.md").read_text()
