"""Config loading: valid files load; every kind of bad input names file, line and key."""
import re
from pathlib import Path

import pytest

from harness import configs
from harness.errors import ConfigError


def test_every_shipped_arch_and_storm_loads():
    for name in configs.arch_names():
        arch = configs.load_arch(name)
        assert arch.name == name
        assert arch.memory_mb >= 64
        # The module's notifier churn needs MMU_NOTIFIER; an arch where nothing selects it says so.
        assert ("CONFIG_MMU_NOTIFIER=y" in arch.fragment) != ("CONFIG_MMU_NOTIFIER" in arch.unavailable), \
            f"{name}: ask for MMU_NOTIFIER or list it as unavailable"
    for name in configs.storm_names():
        storm = configs.load_storm(name)
        assert storm.stressors
    assert configs.load_profile("kasan").fragments[-1].name == "kasan.config"


def test_unknown_arch_lists_valid_ones():
    with pytest.raises(ConfigError) as info:
        configs.load_arch("foo")
    assert "unknown arch 'foo'" in str(info.value)
    assert "x86_64" in str(info.value)


def test_path_like_name_is_rejected():
    with pytest.raises(ConfigError):
        configs.load_arch("../storms/swapoff-fork-mmap")


def test_unknown_storm_and_profile():
    with pytest.raises(ConfigError, match="valid storms: .*swapoff-fork-mmap"):
        configs.load_storm("nope")
    with pytest.raises(ConfigError, match="valid profiles: .*kasan, lockdep"):
        configs.load_profile("nope")


def _break(config_dir: Path, rel: str, old: str, new: str) -> Path:
    path = config_dir / rel
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    return path


def test_yaml_syntax_error_names_file_and_line(config_dir):
    path = _break(config_dir, "arches/x86_64.yaml", "  smp: 2", "  smp: [2")
    with pytest.raises(ConfigError) as info:
        configs.load_arch("x86_64", config_dir)
    assert str(path) in str(info.value)
    assert "invalid YAML" in str(info.value)


def test_wrong_type_names_file_line_and_key(config_dir):
    path = _break(config_dir, "arches/x86_64.yaml", "memory_mb: 256", "memory_mb: lots")
    with pytest.raises(ConfigError) as info:
        configs.load_arch("x86_64", config_dir)
    line = next(i for i, t in enumerate(path.read_text().splitlines(), 1) if "memory_mb" in t)
    assert f"{path}:{line}: key 'qemu.memory_mb': expected int, got str 'lots'" in str(info.value)


def test_unknown_key_is_an_error(config_dir):
    _break(config_dir, "storms/swapoff-fork-mmap.yaml", "duration_s: 60", "duration_s: 60\ndurration: 5")
    with pytest.raises(ConfigError, match=r"swapoff-fork-mmap.yaml:\d+: key 'durration': unknown key"):
        configs.load_storm("swapoff-fork-mmap", config_dir)


def test_bool_is_not_an_int(config_dir):
    _break(config_dir, "arches/x86_64.yaml", "smp: 2", "smp: yes")
    with pytest.raises(ConfigError, match="key 'qemu.smp': expected int, got bool"):
        configs.load_arch("x86_64", config_dir)


def test_missing_key(config_dir):
    _break(config_dir, "arches/x86_64.yaml", "  binary: qemu-system-x86_64\n", "")
    with pytest.raises(ConfigError, match="missing key 'qemu.binary'"):
        configs.load_arch("x86_64", config_dir)


def test_fragment_lines_are_checked(config_dir):
    _break(config_dir, "arches/x86_64.yaml", "    CONFIG_64BIT=y", "    64BIT=y")
    with pytest.raises(ConfigError, match="not a kconfig line: '64BIT=y'"):
        configs.load_arch("x86_64", config_dir)


def test_priorities_must_match_devices(config_dir):
    _break(config_dir, "storms/swapoff-fork-mmap.yaml", "priorities: [10, 5, 1]", "priorities: [10, 5]")
    with pytest.raises(ConfigError, match="2 priorities for 3 devices"):
        configs.load_storm("swapoff-fork-mmap", config_dir)


def test_swap_file_priorities_must_match_count(config_dir):
    path = _break(config_dir, "storms/swapoff-fork-mmap.yaml", "priorities: [5, 2]", "priorities: [5]")
    message = r"swapoff-fork-mmap.yaml:\d+: key 'swap.files.priorities': 1 priorities for 2 files"
    with pytest.raises(ConfigError, match=message):
        configs.load_storm("swapoff-fork-mmap", config_dir)
    path.write_text(path.read_text().replace("    count: 2", "    count: 2\n    sizemb: 3"))
    with pytest.raises(ConfigError, match="key 'swap.files.sizemb': unknown key"):
        configs.load_storm("swapoff-fork-mmap", config_dir)


def test_parse_fragment():
    parsed = configs.parse_fragment("CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=\"x y\"\njunk\n")
    assert parsed == {"CONFIG_A": "y", "CONFIG_B": "n", "CONFIG_C": '"x y"'}


def test_version_fragments_apply_to_their_kernel_version_only():
    from harness.kernel.config import fragments_for

    arch = configs.load_arch("x86_64")
    profile = configs.load_profile("lockdep")
    names_612 = [f.name for f in fragments_for(arch, profile, "6.12.57")]
    names_61 = [f.name for f in fragments_for(arch, profile, "6.1.192")]
    assert any("version_fragments.6.12" in n for n in names_612)
    assert not any("version_fragments" in n for n in names_61)
    assert not any("version_fragments" in n for n in [f.name for f in fragments_for(arch, profile, "6.120.1")])


def test_shared_version_fragments_apply_to_every_arch_on_their_version_only():
    from harness.kernel.config import fragments_for

    profile = configs.load_profile("lockdep")
    for name in configs.arch_names():
        arch = configs.load_arch(name)
        on_612 = {f.name: f.text for f in fragments_for(arch, profile, "6.12.118")}
        assert "CONFIG_RCU_BOOST=y" in on_612["configs/kernel/versions/6.12.config"], name
        names = list(on_612)
        # after base.config, before the arch's own fragment and the profile's
        assert names.index("configs/kernel/versions/6.12.config") == 1, names
        for other in ("6.1.176", "6.120.1", ""):
            assert not any("versions/" in f.name for f in fragments_for(arch, profile, other)), other


def test_tcg_thread_is_multi_unless_the_arch_says_single(config_dir):
    from harness import qemu

    assert configs.load_arch("x86_64").tcg_thread == "multi"
    _break(config_dir, "arches/x86_64.yaml", "  smp: 2", "  smp: 2\n  tcg_thread: single")
    arch = configs.load_arch("x86_64", config_dir)
    spec = qemu.BootSpec(kernel=Path("k"), initrd=Path("i"), append="", accel="tcg")
    argv = qemu.argv(arch, spec)
    assert argv[argv.index("-accel") + 1] == "tcg,thread=single"
    _break(config_dir, "arches/x86_64.yaml", "tcg_thread: single", "tcg_thread: many")
    with pytest.raises(ConfigError,
                       match=r"x86_64.yaml:\d+: key 'qemu.tcg_thread': tcg_thread must be one of multi, single"):
        configs.load_arch("x86_64", config_dir)


def test_busybox_source_is_a_known_choice(config_dir):
    assert configs.load_arch("x86_64").busybox == "package"
    path = _break(config_dir, "arches/x86_64.yaml", "debian_arch: amd64", "debian_arch: amd64\nbusybox: source")
    assert configs.load_arch("x86_64", config_dir).busybox == "source"
    path.write_text(path.read_text().replace("busybox: source", "busybox: compiled"))
    with pytest.raises(ConfigError, match=r"x86_64.yaml:\d+: key 'busybox': busybox must be one of package, source"):
        configs.load_arch("x86_64", config_dir)


def test_unavailable_options_leave_the_shared_fragments(config_dir):
    import dataclasses

    from harness.kernel.config import fragments_for

    _break(config_dir, "arches/x86_64.yaml", "  fragment: |",
           "  unavailable: [CONFIG_SOFTLOCKUP_DETECTOR]\n  fragment: |")
    assert configs.load_arch("x86_64", config_dir).unavailable == ("CONFIG_SOFTLOCKUP_DETECTOR",)
    arch = dataclasses.replace(configs.load_arch("x86_64"), unavailable=("CONFIG_SOFTLOCKUP_DETECTOR",))
    frags = fragments_for(arch, configs.load_profile("lockdep"), "6.1.1")
    profile_text = next(f.text for f in frags if f.name.endswith("lockdep.config"))
    assert "CONFIG_SOFTLOCKUP_DETECTOR" not in profile_text
    assert "CONFIG_DETECT_HUNG_TASK=y" in profile_text
    plain = fragments_for(configs.load_arch("x86_64"), configs.load_profile("lockdep"), "6.1.1")
    assert "CONFIG_SOFTLOCKUP_DETECTOR=y" in next(f.text for f in plain if f.name.endswith("lockdep.config"))


def test_unavailable_option_the_arch_sets_itself_is_an_error(config_dir):
    _break(config_dir, "arches/x86_64.yaml", "  fragment: |", "  unavailable: [CONFIG_ACPI]\n  fragment: |")
    with pytest.raises(ConfigError, match="CONFIG_ACPI is unavailable but the arch's own fragment sets it"):
        configs.load_arch("x86_64", config_dir)
    _break(config_dir, "arches/x86_64.yaml", "[CONFIG_ACPI]", "[SOFTLOCKUP]")
    with pytest.raises(ConfigError, match="not a kconfig option name: 'SOFTLOCKUP'"):
        configs.load_arch("x86_64", config_dir)


def test_monitor_pc_must_be_a_regex_with_one_group(config_dir):
    _break(config_dir, "arches/x86_64.yaml", "monitor_pc: '\\b[RE]IP=([0-9a-f]+)'", "monitor_pc: '(RIP)=([0-9a-f]+)'")
    with pytest.raises(ConfigError, match=r"x86_64.yaml:\d+: key 'qemu.monitor_pc': needs exactly one group"):
        configs.load_arch("x86_64", config_dir)
    _break(config_dir, "arches/x86_64.yaml", "monitor_pc: '(RIP)=([0-9a-f]+)'", "monitor_pc: 'RIP=([0-9a-f]+'")
    with pytest.raises(ConfigError, match=r"key 'qemu.monitor_pc': not a regular expression"):
        configs.load_arch("x86_64", config_dir)


@pytest.mark.e2e   # starts the arch's real QEMU: not in `make unit`
@pytest.mark.parametrize("name", configs.arch_names())
def test_monitor_pc_finds_every_vcpu_in_the_real_monitor(name):
    """The arch's monitor_pc against its own QEMU (machine, cpu, smp; halted at reset, -S):
    one pc per vCPU, in `info registers -a` as QEMU really prints it."""
    import shutil
    import subprocess

    arch = configs.load_arch(name)
    if not shutil.which(arch.qemu_binary):
        pytest.skip(f"{arch.qemu_binary} not installed (make deps)")
    proc = subprocess.run([arch.qemu_binary, "-M", arch.machine, "-cpu", arch.cpu, "-smp", str(arch.smp),
                           "-m", str(arch.memory_mb), "-S", "-display", "none", "-nodefaults",
                           "-monitor", "stdio"], input="info registers -a\nquit\n",
                          capture_output=True, text=True, timeout=60)
    pcs = re.findall(arch.monitor_pc, proc.stdout)
    assert len(pcs) == arch.smp, proc.stdout[-2000:] + proc.stderr
    # QEMU prints a pc zero-padded to its register's width (32 or 64 bits): a pattern that
    # caught a register name, a flag or a partial number would not read as one.
    assert all(len(pc) in (8, 16) and int(pc, 16) < 1 << 64 for pc in pcs), pcs
    if arch.qemu_binary.startswith("qemu-system-x86_64") or arch.qemu_binary == "qemu-system-i386":
        assert all(int(pc, 16) == 0xFFF0 for pc in pcs), pcs   # every x86 vCPU at its reset vector


def test_preemption_models_are_kernels_of_their_own():
    from harness.configs import PREEMPT_MODELS, load_profile, parse_fragment, with_preempt

    lockdep = load_profile("lockdep")
    assert with_preempt(lockdep, "full") == lockdep
    for model in ("none", "voluntary"):
        variant = with_preempt(lockdep, model)
        assert variant.name == f"lockdep-preempt-{model}" and variant.fragments[:-1] == lockdep.fragments
        options = parse_fragment(variant.fragments[-1].read_text())
        # the model's choice, the other two off, and DEBUG_PREEMPT (needs PREEMPTION) off
        chosen = {"none": "CONFIG_PREEMPT_NONE", "voluntary": "CONFIG_PREEMPT_VOLUNTARY"}[model]
        assert options[chosen] == "y" and options["CONFIG_PREEMPT"] == "n"
        assert options["CONFIG_DEBUG_PREEMPT"] == "n"
    assert PREEMPT_MODELS == ("none", "voluntary", "full")
    with pytest.raises(ConfigError, match="unknown preemption model 'lazy'; valid: none, voluntary, full"):
        with_preempt(lockdep, "lazy")


def test_preempt_model_is_read_from_the_built_config():
    from harness.run import preempt_model

    assert preempt_model("CONFIG_PREEMPT_NONE=y\n# CONFIG_PREEMPT is not set\n") == "none"
    assert preempt_model("CONFIG_PREEMPT_BUILD=y\nCONFIG_PREEMPT=y\n") == "full"
    assert preempt_model("CONFIG_PREEMPT_VOLUNTARY=y\n") == "voluntary"


def test_the_tables_load_through_the_registry_with_file_line_and_key(config_dir):
    """locks.yaml, requires.yaml and selftest.yaml: configs' loaders, the same errors as an arch's."""
    assert "swap_lock" in configs.load_lock_targets(config_dir)
    assert configs.load_requirements(config_dir).modes and configs.load_selftest_cases(config_dir / "selftest.yaml")
    _break(config_dir, "selftest.yaml", "    duration_s: 30\n", "    duration_s: thirty\n")
    with pytest.raises(ConfigError, match=r"selftest\.yaml:\d+: key 'cases\.clean\.duration_s': expected int"):
        configs.load_selftest_cases(config_dir / "selftest.yaml")
    _break(config_dir, "locks.yaml", "default: [mmap_lock,", "default: [no_such_lock, mmap_lock,")
    with pytest.raises(ConfigError, match=r"locks\.yaml:\d+: key 'default': unknown lock target\(s\) no_such_lock"):
        configs.load_lock_targets(config_dir)
    _break(config_dir, "kernel/requires.yaml", "uffd: [CONFIG_USERFAULTFD]", "uffd: CONFIG_USERFAULTFD")
    with pytest.raises(ConfigError, match=r"requires\.yaml:\d+: key 'modes\.uffd': expected list"):
        configs.load_requirements(config_dir)


def test_an_arch_names_its_kbuild_srcarch(config_dir):
    """No second table of arch facts: SRCARCH is the arch's YAML (kernel_srcarch, default kernel_arch)."""
    assert {name: configs.load_arch(name).kernel_srcarch for name in configs.arch_names()} == {
        "aarch64": "arm64", "arm": "arm", "i386": "x86", "ppc64le": "powerpc", "riscv64": "riscv",
        "s390x": "s390", "x86_64": "x86"}
    _break(config_dir, "arches/arm.yaml", "kernel_arch: arm\n", "kernel_arch: arm\nkernel_srcarch: [arm]\n")
    with pytest.raises(ConfigError, match=r"arm\.yaml:\d+: key 'kernel_srcarch': expected str"):
        configs.load_arch("arm", config_dir)


def test_a_storm_that_needs_a_bigger_guest_gets_it_and_a_bad_size_is_refused(config_dir):
    from harness import qemu
    from harness.run import RunRequest, load_request
    arch, _, storm, _ = load_request(RunRequest(arch="x86_64", storm="oom-group"))
    assert storm.memory_mb > configs.load_arch("x86_64").memory_mb
    spec = qemu.BootSpec(kernel=Path("k"), initrd=Path("i"), append="", accel="tcg")
    assert arch.memory_mb == storm.memory_mb and f"-m {storm.memory_mb} " in " ".join(qemu.argv(arch, spec))
    arch, _, storm, _ = load_request(RunRequest(arch="x86_64"))   # the arch's own size otherwise
    assert storm.memory_mb == 0 and arch.memory_mb == configs.load_arch("x86_64").memory_mb
    _break(config_dir, "storms/oom-group.yaml", "memory_mb: 640", "memory_mb: 8192")
    with pytest.raises(ConfigError, match=r"oom-group\.yaml:\d+: .*memory_mb.*must be 64\.\.4096 MiB"):
        configs.load_storm("oom-group", config_dir)
