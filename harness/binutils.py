"""The host's binutils for symbolisation: report.symbols rewrites frames and reads
the tools' output, this module runs them (nm, objdump, addr2line of the arch's
cross prefix). Kept out of report/, which runs no process: a saved log is parsed
on a machine with no toolchain at all.
"""
from __future__ import annotations

import os
import subprocess

from harness.report import symbols
from harness.report.symbols import Symbols, parse_nm, parse_objdump


def sibling(addr2line: str, name: str) -> str:
    """The sibling binutils tool: 'aarch64-linux-gnu-addr2line' -> '...-nm'."""
    if addr2line.endswith("addr2line"):
        return addr2line[: -len("addr2line")] + name
    return name


def _output(argv: list[str]) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


class HostBinutils:
    """report.symbols.Binutils with the host's tools; CalledProcessError / OSError when unusable."""

    def __init__(self, addr2line: str = "addr2line", nm: str | None = None, objdump: str | None = None) -> None:
        self.addr2line_tool = addr2line
        self.nm = nm or sibling(addr2line, "nm")
        self.objdump = objdump or sibling(addr2line, "objdump")

    def text_symbols(self, vmlinux: str) -> str:
        return _output([self.nm, "-S", "--defined-only", vmlinux])

    def object_symbols(self, obj: str) -> str:
        return _output([self.objdump, "-t", obj])

    def addr2line(self, obj: str, section: str, pcs: list[int]) -> str:
        where = ["-j", section] if section else []
        return _output([self.addr2line_tool, "-a", "-f", "-i", *where, "-e", obj, *(hex(pc) for pc in pcs)])


def symbolize(log_path: str, vmlinux: str, out_path: str, addr2line: str = "addr2line",
              strip: str | None = None, modules: dict[str, str] | None = None) -> int:
    """report.symbols.symbolize with the host's binutils: `log_path` to `out_path` with frames
    resolved, how many frame lines were annotated. Raises OSError / CalledProcessError when the
    files or the tools are unusable."""
    for path in [vmlinux, *(modules or {}).values()]:
        if not os.path.isfile(path):
            raise FileNotFoundError(path)
    return symbols.symbolize(log_path, vmlinux, out_path, HostBinutils(addr2line), strip, modules)


def locate(vmlinux: str, addresses: list[int], addr2line: str = "addr2line",
           strip: str | None = None) -> dict[int, str]:
    """report.symbols.locate with the host's binutils: exact pcs named as an oops names them."""
    return symbols.locate(vmlinux, addresses, HostBinutils(addr2line), strip)


def read_symbols(vmlinux: str, nm: str = "nm") -> Symbols:
    return parse_nm(HostBinutils(nm=nm).text_symbols(vmlinux))


def read_section_symbols(obj: str, objdump: str = "objdump") -> Symbols:
    return parse_objdump(HostBinutils(objdump=objdump).object_symbols(obj))
