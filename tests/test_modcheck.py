"""module-check's export lookup: on a tree brought only to modules_prepare
modpost cannot say whether the kernel exports what the module calls, so
module-check reads the EXPORT_SYMBOL*() lines of the source instead."""
import subprocess
from pathlib import Path

from harness.configs import load_arch
from harness.modcheck import _pasted_pattern, exported_for, undefined_symbols, unexported


def _tree(root: Path) -> Path:
    files = {
        "mm/memory.c": "void mmput(void) {}\nEXPORT_SYMBOL_GPL(mmput);\n"
                       "EXPORT_SYMBOL( spaced_out );\nEXPORT_SYMBOL_NS_GPL(in_ns, MYNS);\n",
        "kernel/params.c": "#define STANDARD_PARAM_DEF(name)\t\\\n"
                           "\tEXPORT_SYMBOL(param_ops_##name)\n",
        "include/linux/suffix.h": "#define T(name) EXPORT_SYMBOL(name ## _test)\n",
        "arch/riscv/mm/pgtable.c": "EXPORT_SYMBOL(riscv_only);\n",
        "arch/x86/lib/retpoline.S": "#define EXPORT_THUNK(reg) EXPORT_SYMBOL(__x86_indirect_thunk_ ## reg)\n",
        "arch/x86/kernel/setup.c": "EXPORT_PER_CPU_SYMBOL(x86_percpu);\n",
        "Documentation/not-code.txt": "EXPORT_SYMBOL(documented_only);\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_exports_are_found_per_arch(tmp_path):
    root = _tree(tmp_path)
    x86 = exported_for(root, "x86")
    riscv = exported_for(root, "riscv")
    for symbol in ("mmput", "spaced_out", "in_ns", "param_ops_uint", "x86_percpu",
                   "__x86_indirect_thunk_rax", "__SCK__might_resched"):
        assert symbol in x86, symbol
    assert "riscv_only" in riscv and "riscv_only" not in x86
    assert "x86_percpu" in exported_for(root, load_arch("i386").kernel_srcarch)  # ARCH=i386: arch/x86 (its YAML)
    assert "__x86_indirect_thunk_rax" not in riscv and "x86_percpu" not in riscv
    assert ".TOC." in riscv and "_restgpr0_14" in riscv  # linked by modpost itself
    assert unexported(["mmput", "param_ops_int", "documented_only", "__pte_offset_map_lock",
                       "foo_test"], x86) == ["documented_only", "__pte_offset_map_lock", "foo_test"]


def test_pasted_names_need_a_written_prefix():
    assert _pasted_pattern("get_random_ ##type") == r"get_random_\w+"
    assert _pasted_pattern("__tsan_atomic##bits##_load") == r"__tsan_atomic\w+_load"
    assert _pasted_pattern("name ## _test") is None
    assert _pasted_pattern("a ## b") is None


def test_undefined_symbols_of_a_real_object(tmp_path):
    source = tmp_path / "mod.c"
    source.write_text("extern void mmput(void *);\nextern int jiffies_x;\n"
                      "int defined_here(void *p) { mmput(p); return jiffies_x; }\n")
    obj = tmp_path / "mod.o"
    subprocess.run(["gcc", "-c", "-o", str(obj), str(source)], check=True)
    assert undefined_symbols(obj, load_arch("x86_64")) == ["jiffies_x", "mmput"]
