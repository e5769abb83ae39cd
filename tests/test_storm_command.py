"""Storm stressors that are not mmstress (`command:`), and extra guest binaries
with their libraries (image.py's MMLOCK_GUEST_BINARIES hook): no guest."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness import configs, image, storm
from harness.errors import ConfigError

LDD = """\tlinux-vdso.so.1 (0x00007ffc1b1f2000)
\tlibm.so.6 => /lib/x86_64-linux-gnu/libm.so.6 (0x00007f7f7b170000)
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f7f7a21e000)
\t/lib64/ld-linux-x86-64.so.2 (0x00007f7f7c3a9000)
"""


def _storm(tmp_path: Path, stressors: str) -> Path:
    storms = tmp_path / "storms"
    storms.mkdir()
    (storms / "s.yaml").write_text("name: s\nduration_s: 30\nmodule_storm: false\nswap:\n  devices: 1\n"
                                  f"stressors:\n{stressors}")
    return tmp_path


def test_shipped_stress_ng_storm_renders_its_command_with_the_duration():
    spec = configs.load_storm("stress-ng")
    assert spec.stressors[0].mode == "" and spec.stressors[0].command.startswith("stress-ng ")
    lines = storm.plan_lines(spec, 45, 1, ["/dev/vda", "/dev/vdb", "/dev/vdc"])
    assert len(lines) == 1
    assert " --timeout 45s " in lines[0] and "{" not in lines[0] and "\n" not in lines[0]
    assert "--mmap-bytes 8M" in lines[0]


def test_command_placeholders_instances_and_mixing_with_modes(tmp_path):
    config_dir = _storm(tmp_path, "  - mode: hog\n  - command: prog --t {duration} --s {seed}\n    instances: 2\n")
    spec = configs.load_storm("s", config_dir)
    lines = storm.plan_lines(spec, 30, 2, [])
    assert lines[0].startswith("mmstress hog --duration 30 --seed 2001")
    assert lines[1:] == ["prog --t 30 --s 2002", "prog --t 30 --s 2003"]


@pytest.mark.parametrize("entry,message", [
    ("  - command: \"prog 'a b'\"\n", "without a shell"),
    ("  - command: prog > /tmp/x\n", "without a shell"),
    ("  - command: a; b\n", "without a shell"),
    ("  - command: prog\n    mode: hog\n", "either mode"),
    ("  - command: prog\n    args: [x]\n", "either mode"),
])
def test_command_refuses_shell_syntax_and_mixing(tmp_path, entry, message):
    with pytest.raises(ConfigError, match=message):
        configs.load_storm("s", _storm(tmp_path, entry))


def test_a_mode_is_still_required_without_command(tmp_path):
    with pytest.raises(ConfigError, match="missing key 'stressors\\[0\\].mode'"):
        configs.load_storm("s", _storm(tmp_path, "  - instances: 1\n"))


def test_parse_ldd_takes_libraries_and_the_loader_not_the_vdso():
    assert image.parse_ldd(LDD) == [Path("/lib/x86_64-linux-gnu/libm.so.6"),
                                    Path("/lib/x86_64-linux-gnu/libc.so.6"),
                                    Path("/lib64/ld-linux-x86-64.so.2")]
    assert image.parse_ldd("\tnot a dynamic executable\n") == []


def test_parent_dirs_come_parents_first():
    assert image._parent_dirs(["lib/x86_64-linux-gnu/libc.so.6", "lib64/ld.so", "bin/x"]) == \
        ["bin", "lib", "lib64", "lib/x86_64-linux-gnu"]


@pytest.mark.skipif(not shutil.which("ldd") or not Path("/bin/sh").is_file(), reason="needs ldd")
def test_extra_binary_files_brings_the_loader_and_libc():
    arch = configs.load_arch("x86_64")
    if arch.debian_arch != image.host_debian_arch():
        pytest.skip("host is not amd64")
    files = image.extra_binary_files(arch, ["/bin/sh"])
    assert files["bin/sh"][1] == 0o755
    assert any(name.startswith("lib") and "libc.so" in name for name in files)
    assert all(path.is_file() for path, _ in files.values())
    assert image.extra_binary_files(arch, []) == {}


def test_extra_binaries_for_a_foreign_arch_are_refused():
    arch = configs.load_arch("aarch64")
    if arch.debian_arch == image.host_debian_arch():
        pytest.skip("host is arm64")
    with pytest.raises(Exception, match="fit"):
        image.extra_binary_files(arch, ["/bin/sh"])
