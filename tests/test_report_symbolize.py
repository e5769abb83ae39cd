"""Symbolization with real binutils on a small ELF built for the test."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.binutils import locate, read_section_symbols, read_symbols, symbolize
from harness.report import parse_file

SOURCE = """\
static volatile int sink;
__attribute__((noinline)) int leaf_fn(int x)
{
\tsink = x;
\treturn x * 2;
}
__attribute__((noinline)) int middle_fn(int x)
{
\tint y = leaf_fn(x + 1);
\treturn y + 3;
}
int main(void) { return middle_fn(1); }
"""

pytestmark = pytest.mark.skipif(not (shutil.which("gcc") and shutil.which("addr2line")
                                     and shutil.which("nm")),
                                reason="needs gcc, nm and addr2line")


def _toy_vmlinux(tmp_path: Path) -> Path:
    """SOURCE built as mm/toy.c, no inlining: leaf_fn and middle_fn are real symbols."""
    src = tmp_path / "mm" / "toy.c"
    src.parent.mkdir()
    src.write_text(SOURCE)
    binary = tmp_path / "vmlinux"
    subprocess.run(["gcc", "-g", "-O1", "-fno-inline", "-o", str(binary), str(src)], check=True)
    return binary


def test_symbolize_resolves_frames_to_file_line(tmp_path: Path):
    binary = _toy_vmlinux(tmp_path)
    symbols = read_symbols(str(binary))
    (_leaf_addr, leaf_size, _), = symbols["leaf_fn"]
    (mid_addr, mid_size, _), = symbols["middle_fn"]
    # A return address inside middle_fn: just after its call to leaf_fn.
    disasm = subprocess.run(["objdump", "-d", str(binary)], capture_output=True, text=True).stdout
    call = next(ln for ln in disasm.splitlines() if "call" in ln and "<leaf_fn>" in ln)
    ret_off = int(call.split(":")[0], 16) - mid_addr + 5
    log = tmp_path / "console.log"
    log.write_text("\n".join([
        "[   10.000000] ------------[ cut here ]------------",
        f"[   10.000001] WARNING: CPU: 0 PID: 1 at mm/toy.c:4 leaf_fn+0x0/0x{leaf_size:x}",
        f"[   10.000002] RIP: 0010:leaf_fn+0x0/0x{leaf_size:x}",
        "[   10.000003] Call Trace:",
        f"[   10.000004]  middle_fn+0x{ret_off:x}/0x{mid_size:x}",
        "[   10.000005]  mmlock_ioctl+0x10/0x20 [mmlock]",
        "[   10.000006] ---[ end trace 0000000000000000 ]---",
    ]) + "\n")
    out = tmp_path / "console.sym.log"
    assert symbolize(str(log), str(binary), str(out)) >= 2
    text = out.read_text()
    rip = next(line for line in text.splitlines() if "RIP:" in line)
    assert f"leaf_fn+0x0/0x{leaf_size:x} mm/toy.c:" in rip
    assert "crtstuff" not in text  # exact pcs are not moved back into the previous symbol
    assert f"middle_fn+0x{ret_off:x}/0x{mid_size:x} mm/toy.c:9" in text
    assert "mmlock_ioctl+0x10/0x20 [mmlock]\n" in text  # module frames untouched
    assert [r.title for r in parse_file(out)] == [r.title for r in parse_file(log)]


MODULE_SOURCE = """\
static volatile int state;
__attribute__((noinline)) int mod_first(int x)
{
\tstate = x;
\treturn x + 7;
}
__attribute__((noinline)) int mod_second(int x)
{
\tstate = x * 3;
\treturn x;
}
"""


def test_module_frames_resolve_against_the_named_ko(tmp_path: Path):
    """A `[mmlock]` frame is looked up in mmlock.ko (a relocatable object, symbols as
    offsets into their own sections: with -ffunction-sections, as gcc's .text.unlikely
    does for cold functions, both functions sit at offset 0); a frame of another
    module stays as it was."""
    src = tmp_path / "work" / "module" / "mmlock.c"
    src.parent.mkdir(parents=True)
    src.write_text(MODULE_SOURCE)
    ko = tmp_path / "mmlock.ko"
    subprocess.run(["gcc", "-g", "-O1", "-ffunction-sections", "-c", "-o", str(ko), str(src)], check=True)
    vmlinux = tmp_path / "vmlinux"
    (tmp_path / "toy.c").write_text(SOURCE)
    subprocess.run(["gcc", "-g", "-O1", "-o", str(vmlinux), str(tmp_path / "toy.c")], check=True)
    symbols = read_section_symbols(str(ko))
    (second, second_size, second_section), = symbols["mod_second"]
    (first, first_size, first_section), = symbols["mod_first"]
    assert (second, first, second_section, first_section) == (0, 0, ".text.mod_second", ".text.mod_first")
    log = tmp_path / "console.log"
    log.write_text("\n".join([
        f"[    5.0] RIP: 0010:mod_second+0x0/0x{second_size:x} [mmlock]",
        f"[    5.1]  mod_second+0x0/0x{second_size:x} [othermod]",
        f"[    5.2]  mod_first+0x0/0x{first_size:x} [mmlock]",
    ]) + "\n")
    out = tmp_path / "console.sym.log"
    assert symbolize(str(log), str(vmlinux), str(out), modules={"mmlock": str(ko)}) == 2
    lines = out.read_text().splitlines()
    assert lines[0].endswith(f"mod_second+0x0/0x{second_size:x} [mmlock] guest/module/mmlock.c:8")  # its opening line
    assert lines[1].endswith("[othermod]")
    # within mod_first (lines 2-6), not at the same offset of mod_second's section
    assert re.search(rf"mod_first\+0x0/0x{first_size:x} \[mmlock\] guest/module/mmlock\.c:[2-6]$", lines[2])


def test_section_symbols_read_ppc64_elfv2_st_other(tmp_path: Path):
    """powerpc64le's objdump prints st_other (the local entry offset) before the name."""
    tool = tmp_path / "objdump"
    tool.write_text("#!/bin/sh\ncat <<'END'\n\nmmlock.ko:     file format elf64-powerpcle\n\nSYMBOL TABLE:\n"
                    "0000000000000000 l    df *ABS*\t0000000000000000 mmlock.c\n"
                    "0000000000000008 l     F .text.unlikely\t0000000000000048 0x60 null_thread\n"
                    "0000000000000100 g     F .text\t0000000000000010 mmlock_init\n"
                    "0000000000000010 l     O .data\t0000000000000008 mmlock_null_ptr\nEND\n")
    tool.chmod(0o755)
    symbols = read_section_symbols("mmlock.ko", str(tool))
    assert symbols == {"null_thread": [(8, 0x48, ".text.unlikely")], "mmlock_init": [(0x100, 0x10, ".text")]}


def test_locate_names_exact_pcs_like_an_oops(tmp_path: Path):
    """A stalled vCPU's pc (from QEMU's monitor): func+0xoff/0xsize and its source line;
    a pc in no text symbol (user space, firmware) is left out."""
    binary = _toy_vmlinux(tmp_path)
    symbols = read_symbols(str(binary))
    (leaf, leaf_size, _), = symbols["leaf_fn"]
    (mid, mid_size, _), = symbols["middle_fn"]
    named = locate(str(binary), [leaf, mid + mid_size - 1, 0x10])
    assert named[leaf].startswith(f"leaf_fn+0x0/0x{leaf_size:x} (")
    assert re.fullmatch(r".* \(mm/toy\.c:[3-5]\)", named[leaf]), named[leaf]
    assert named[mid + mid_size - 1].startswith(f"middle_fn+0x{mid_size - 1:x}/0x{mid_size:x}")
    assert 0x10 not in named
