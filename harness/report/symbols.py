"""Resolve `func+0xoff/0xsize` frames of a console log to file:line.

Works like scripts/decode_stacktrace.sh: symbol start addresses come from
`nm -S` on vmlinux, the frame's pc is start + offset (minus one for return
addresses, so the call site is reported rather than the next statement),
and `addr2line -f -i` resolves it, inlined callers included. Module frames
(`func+0x1/0x2 [mmlock]`) resolve the same way against the module's own
.ko when the caller names it (symbols there are section offsets, so the
function's offset is all addr2line needs); other modules' frames are left
alone.
Two streaming passes over the log (collect, then rewrite) keep memory
bounded by the number of distinct frames, not by the log size.

Pure, like the rest of report/: the binutils that read vmlinux are a
`Binutils` the caller hands in (harness/binutils.py runs the host's); this
module reads their output.
"""
from __future__ import annotations

import bisect
import re
from collections.abc import Iterator
from typing import Protocol

from .reader import iter_file_lines

# A frame anywhere in a line, with its module tag if any.
_FRAME = re.compile(r"(?<![\w.])([a-zA-Z_][a-zA-Z0-9_.]*)\+0x([0-9a-f]+)/0x([0-9a-f]+)(?: \[(\w+)\])?")
# Lines whose frame is the exact faulting pc, not a return address.
_EXACT_PC = re.compile(r"(?:^|\] )(?:RIP: [0-9a-f]+:|IP: |pc : |epc : |PC is at |NIP \[|"
                       r"Krnl PSW : [0-9a-f]+ [0-9a-f]+ \(|WARNING: .* at )")
# Top-level kernel source directories: anything before them is the build path.
_SRC_ROOT = re.compile(r"^.*?/((?:arch|block|certs|crypto|drivers|fs|include|init|io_uring|ipc|"
                       r"kernel|lib|mm|net|rust|samples|scripts|security|sound|tools|usr|virt)/)")
_BATCH = 512


Symbols = dict[str, list[tuple[int, int, str]]]


class Binutils(Protocol):
    """What symbolisation asks of binutils; each returns the tool's standard output."""

    def text_symbols(self, vmlinux: str) -> str:
        """`nm -S --defined-only VMLINUX`."""
        ...

    def object_symbols(self, obj: str) -> str:
        """`objdump -t OBJ` (a relocatable .ko)."""
        ...

    def addr2line(self, obj: str, section: str, pcs: list[int]) -> str:
        """`addr2line -a -f -i [-j SECTION] -e OBJ PC...`."""
        ...


def parse_nm(text: str) -> Symbols:
    """`nm -S` output -> text symbols: name -> [(address, size, "")], several for static duplicates."""
    symbols: Symbols = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[2] in "tTwW":
            symbols.setdefault(parts[3], []).append((int(parts[0], 16), int(parts[1], 16), ""))
    return symbols


def parse_objdump(text: str) -> Symbols:
    """`objdump -t` output of a relocatable object (a .ko) -> function symbols: name ->
    [(offset, size, section)]. Their values are offsets into their own section
    (.text, .text.unlikely, .init.text ...), so addr2line needs the section
    too (`-j`)."""
    symbols: Symbols = {}
    for line in text.splitlines():
        # "0000000000000000 l     F .text.unlikely\t000000000000003a null_thread";
        # ppc64 ELFv2 puts st_other ("0x60", the local entry offset) before the name.
        head, tab, tail = line.partition("\t")
        fields, rest = head.split(), tail.split()
        if not tab or len(fields) < 3 or fields[-2] != "F" or len(rest) not in (2, 3):
            continue
        symbols.setdefault(rest[-1], []).append((int(fields[0], 16), int(rest[0], 16), fields[-1]))
    return symbols


# (section, address): the section is "" for vmlinux, whose addresses are absolute.
Pc = tuple[str, int]


def _pc(symbols: Symbols, name: str, off: int, size: int, exact: bool) -> Pc | None:
    candidates = symbols.get(name) or symbols.get(name.split(".")[0])
    if not candidates:
        return None
    start, _, section = next((c for c in candidates if c[1] == size), candidates[0])
    # Offset 0 cannot be a return address (the call would precede the function).
    return section, start + off - (0 if exact or off == 0 else 1)


def _clean(path: str, strip: str | None, module: str = "") -> str:
    if strip and path.startswith(strip):
        return path[len(strip):].lstrip("/")
    if module and "/module/" in path:   # built out of tree in a scratch dir: name it as the repo does
        return "guest/module/" + path.rsplit("/", 1)[-1]
    match = _SRC_ROOT.match(path)
    return path[match.start(1):] if match else path


def _resolve(pcs: list[Pc], obj: str, tools: Binutils,
             strip: str | None, module: str = "") -> dict[Pc, list[tuple[str, str]]]:
    """pc -> [(function, file:line)], innermost inlined function first."""
    out: dict[Pc, list[tuple[str, str]]] = {}
    by_section: dict[str, list[int]] = {}
    for section, address in pcs:
        by_section.setdefault(section, []).append(address)
    for section, addresses in sorted(by_section.items()):
        for i in range(0, len(addresses), _BATCH):
            current: Pc | None = None
            lines = tools.addr2line(obj, section, addresses[i:i + _BATCH]).splitlines()
            k = 0
            while k < len(lines):
                if lines[k].startswith("0x"):
                    current = (section, int(lines[k], 16))
                    out[current] = []
                    k += 1
                    continue
                if current is not None and k + 1 < len(lines):
                    func, loc = lines[k], lines[k + 1].split(" (discriminator")[0]
                    if not loc.startswith("??") and not loc.endswith(":?"):
                        out[current].append((func, _clean(loc, strip, module)))
                k += 2
    return out


def _frames(line: str) -> Iterator[tuple[re.Match, bool]]:
    exact = _EXACT_PC.search(line) is not None
    for match in _FRAME.finditer(line):
        yield match, exact


class _Object:
    """vmlinux or one module: its text symbols and the frames resolved in it."""

    def __init__(self, path: str, tools: Binutils, strip: str | None, module: str = "") -> None:
        self.path, self.module, self.strip, self.tools = path, module, strip, tools
        self.symbols = parse_objdump(tools.object_symbols(path)) if module else parse_nm(tools.text_symbols(path))
        self.wanted: set[Pc] = set()
        self.resolved: dict[Pc, list[tuple[str, str]]] = {}

    def pc(self, match: re.Match, exact: bool) -> Pc | None:
        return _pc(self.symbols, match.group(1), int(match.group(2), 16), int(match.group(3), 16), exact)

    def resolve(self) -> None:
        self.resolved = _resolve(sorted(self.wanted), self.path, self.tools, self.strip, self.module)


def symbolize(log_path: str, vmlinux: str, out_path: str, tools: Binutils,
              strip: str | None = None, modules: dict[str, str] | None = None) -> int:
    """Write `log_path` to `out_path` with frames resolved; return how many
    frame lines were annotated. `modules` maps a module name to its .ko
    (with debug info) for `[name]` frames. Whatever @tools raise (the files
    or the tools unusable) passes."""
    objects = {"": _Object(vmlinux, tools, strip)}
    for name, path in (modules or {}).items():
        objects[name] = _Object(path, tools, strip, module=name)

    def located(line: str) -> Iterator[tuple[re.Match, _Object, Pc | None]]:
        for match, exact in _frames(line):
            obj = objects.get(match.group(4) or "")
            if obj is not None:
                yield match, obj, obj.pc(match, exact)

    for line in iter_file_lines(log_path):
        for _, obj, pc in located(line):
            if pc is not None:
                obj.wanted.add(pc)
    for obj in objects.values():
        obj.resolve()
    annotated = 0
    with open(out_path, "w", encoding="utf-8") as out:
        for line in iter_file_lines(log_path):
            line = line.rstrip("\r")
            found = next(((m, obj, pc) for m, obj, pc in located(line)
                          if pc is not None and obj.resolved.get(pc)), None)
            if found is None:
                out.write(line + "\n")
                continue
            match, obj, pc = found
            assert pc is not None
            entries = obj.resolved[pc]
            annotated += 1
            end = match.end()
            # Inlined callees first, each on its own line, as decode_stacktrace.sh does.
            for func, loc in entries[:-1]:
                out.write(line[:match.start()] + func + " " + loc + " [inline]\n")
            out.write(line[:end] + " " + entries[-1][1] + line[end:] + "\n")
    return annotated


def locate(vmlinux: str, addresses: list[int], tools: Binutils, strip: str | None = None) -> dict[int, str]:
    """Exact pcs (a stalled vCPU's, read from QEMU's monitor) named the way an
    oops names them: `func+0xoff/0xsize`, then the innermost source line
    (and the inlined function it is in, when that is not func). A pc in no
    text symbol of vmlinux (user space, firmware) is left out."""
    table = sorted((start, size, name) for name, entries in
                   parse_nm(tools.text_symbols(vmlinux)).items()
                   for start, size, _ in entries if size)
    starts = [start for start, _, _ in table]
    named: dict[int, str] = {}
    for address in set(addresses):
        i = bisect.bisect_right(starts, address) - 1
        if i >= 0 and address < table[i][0] + table[i][1]:
            start, size, name = table[i]
            named[address] = f"{name}+0x{address - start:x}/0x{size:x}"
    lines = _resolve([("", a) for a in sorted(named)], vmlinux, tools, strip)
    for address in named:
        entries = lines.get(("", address))
        if entries:
            func, loc = entries[0]
            inner = "" if func == named[address].split("+")[0] else f"{func} "
            named[address] += f" ({inner}{loc})"
    return named
