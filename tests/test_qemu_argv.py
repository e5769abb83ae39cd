"""The QEMU command line comes from the arch's data, nothing else."""
import dataclasses
import os
import platform
import sys
from pathlib import Path

import pytest

from harness import configs, qemu
from harness.errors import ConfigError, InfraError


def _spec(accel="tcg", **kw):
    return qemu.BootSpec(kernel=Path("kernel.img"), initrd=Path("initramfs.cpio"),
                         append="console=ttyS0 panic=-1", accel=accel, **kw)


def _value(argv, flag):
    return argv[argv.index(flag) + 1]


def test_x86_64_tcg_argv():
    arch = configs.load_arch("x86_64")
    argv = qemu.argv(arch, _spec(disks=(Path("swap0.img"), Path("swap1.img")),
                                 console_log=Path("qemu-console.log")))
    assert argv[0] == "qemu-system-x86_64"
    assert _value(argv, "-accel") == "tcg,thread=multi"
    assert _value(argv, "-cpu") == arch.cpu
    assert _value(argv, "-m") == "256"
    assert _value(argv, "-smp") == "2,sockets=2"   # no ACPI: the MP table lists a CPU a socket
    assert "-no-reboot" in argv
    assert _value(argv, "-chardev") == "stdio,id=con0,signal=off,mux=on,logfile=qemu-console.log"
    assert _value(argv, "-mon") == "chardev=con0,mode=readline"   # sysrq by break, monitor on Ctrl-A c
    assert argv.count("virtio-blk-pci,drive=swap0,serial=mmlock-swap0") == 1
    assert "file=swap1.img,format=raw,if=none,id=swap1,cache=unsafe" in argv
    assert _value(argv, "-netdev") == "user,id=net0,restrict=on"
    # the NIC without SeaBIOS's iPXE option ROM: the kernel comes from -kernel
    assert argv[argv.index("-netdev") + 3] == "virtio-net-pci,romfile=,netdev=net0"


def test_kvm_uses_kvm_cpu_and_hostfwd_is_loopback_only():
    arch = configs.load_arch("x86_64")
    argv = qemu.argv(arch, _spec(accel="kvm", hostfwd_port=40022))
    assert _value(argv, "-accel") == "kvm"
    assert _value(argv, "-cpu") == arch.kvm_cpu
    assert _value(argv, "-netdev") == "user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:40022-:22"


def test_cmdline_has_console_and_panic():
    arch = configs.load_arch("x86_64")
    line = qemu.kernel_cmdline(arch, "hung_task_timeout_secs=30", "")
    assert line.split()[:3] == ["console=ttyS0", "panic=-1", "rdinit=/init"]
    assert line.endswith("hung_task_timeout_secs=30")


def test_tcg_guest_is_told_the_host_tsc_rate(monkeypatch):
    """x86_64 under TCG counts the host's TSC: tsc_early_khz= is the host's rate, measured
    here; the host kernel's own figure (cpuinfo's MHz, where the TSC's rate is known to
    it and no frequency scaling moves that line) must agree to 0.1 %."""
    from harness import hosttsc

    arch = configs.load_arch("x86_64")
    assert qemu.accel_append(arch, "kvm") == ""   # kvm-clock tells a KVM guest
    assert qemu.accel_append(configs.load_arch("aarch64"), "tcg") == ""
    khz, why_not = hosttsc.host_tsc_khz()
    if platform.machine() != "x86_64":
        assert khz is None and "not an x86_64 host" in why_not
        assert qemu.accel_append(arch, "tcg") == ""
        return
    cpuinfo = Path("/proc/cpuinfo").read_text()
    flags = set(next(line for line in cpuinfo.splitlines() if line.startswith("flags")).split())
    if not {"constant_tsc", "nonstop_tsc"} <= flags:
        assert khz is None and "constant rate" in why_not
        return
    assert khz is not None, why_not
    assert qemu.accel_append(arch, "tcg") == f"tsc_early_khz={khz} tsc=reliable"
    if {"tsc_known_freq", "constant_tsc", "hypervisor"} <= flags:
        mhz = float(next(line for line in cpuinfo.splitlines() if line.startswith("cpu MHz")).split(":")[1])
        assert abs(khz - mhz * 1000) < mhz   # 0.1 %
    hosttsc.host_tsc_khz.cache_clear()
    monkeypatch.setattr(platform, "machine", lambda: "aarch64")
    assert hosttsc.host_tsc_khz() == (None, "not an x86_64 host (aarch64)")
    assert qemu.accel_append(arch, "tcg") == ""
    hosttsc.host_tsc_khz.cache_clear()


def test_accel_validation():
    arch = configs.load_arch("x86_64")
    with pytest.raises(ConfigError, match="valid: auto, kvm, tcg"):
        qemu.choose_accel("fast", arch, Path("/nonexistent"))
    assert qemu.choose_accel("tcg", arch, Path("/nonexistent")) == ("tcg", "requested")
    with pytest.raises(ConfigError):
        qemu.argv(arch, _spec(accel="auto"))


def test_swap_disks_are_sparse(tmp_path):
    disks = qemu.make_swap_disks(tmp_path, 3, 64)
    assert [d.name for d in disks] == ["swap0.img", "swap1.img", "swap2.img"]
    for disk in disks:
        assert disk.stat().st_size == 64 << 20
        assert disk.stat().st_blocks * 512 < 1 << 20


@pytest.mark.skipif(not os.access("/dev/kvm", os.R_OK | os.W_OK), reason="no usable /dev/kvm on this host")
@pytest.mark.parametrize("behaviour,why", [
    ("spin", "no kernel output within 2s under KVM (guest does not run)"),   # nested KVM here
    ("abort", "QEMU failed under KVM: kvm_buf_set_msrs: Assertion failed"),
])
def test_kvm_that_cannot_run_a_guest_falls_back_to_tcg_and_says_why(tmp_path, monkeypatch, behaviour, why):
    """A real process stands in for QEMU under KVM: it spins silently, or aborts like QEMU 7.2
    does here with -cpu host. Either way the run gets TCG, with the reason, cached per host boot."""
    fake = tmp_path / "qemu-system-fake"
    body = ("import sys, time\n"
            "if '--version' in sys.argv: print('QEMU emulator version 0.0-fake'); sys.exit(0)\n"
            + ("time.sleep(60)\n" if behaviour == "spin" else
               "sys.stderr.write('kvm_buf_set_msrs: Assertion failed\\n'); sys.exit(134)\n"))
    fake.write_text(f"#!{sys.executable}\n{body}")
    fake.chmod(0o755)
    monkeypatch.setenv("MMLOCK_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(qemu, "KVM_PROBE_TIMEOUT_S", 2.0)
    arch = dataclasses.replace(configs.load_arch("x86_64"), qemu_binary=str(fake), kvm_host=platform.machine())
    accel, reason = qemu.choose_accel("auto", arch, tmp_path / "bzImage")
    assert accel == "tcg" and reason == f"KVM unusable: {why}"
    again = qemu.choose_accel("auto", arch, tmp_path / "bzImage")
    assert again == ("tcg", f"KVM unusable: {why} (probed earlier on this host boot)")
    with pytest.raises(InfraError, match="ACCEL=kvm but KVM cannot run the guest"):
        qemu.choose_accel("kvm", arch, tmp_path / "bzImage")
