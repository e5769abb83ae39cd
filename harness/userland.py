"""Guest userland that Debian does not ship static (dropbear), or does not
ship at all for an arch (busybox where Debian has no binary packages).

Debian's dropbear is dynamically linked, so the harness builds it from
Debian's own source package (with Debian's patches applied by
`apt-get source`) with the arch's compiler, static, without zlib, and with
guest/init/dropbear-options.h as its localoptions.h. The binary is cached
under <cache>/userland/<debian_arch>/dropbear; a stamp next to it names
what it was built from, so a changed options file rebuilds it.

An arch with `busybox: source` (Debian 12 has no riscv64 packages) gets
busybox the same way: Debian's source package, configured with the config
Debian's busybox-static package is built with, cross compiled, cached as
<cache>/userland/<debian_arch>/busybox-src with its stamp.
"""
from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from harness.cache import cache_root, content_key, file_sha256
from harness.configs import REPO_ROOT, Arch
from harness.errors import BuildError, InfraError
from harness.host import build_env, require_tool, run_logged

log = logging.getLogger(__name__)

DROPBEAR_RECIPE = "dropbear-v1"
BUSYBOX_RECIPE = "busybox-src-v1"
DROPBEAR_OPTIONS = REPO_ROOT / "guest" / "init" / "dropbear-options.h"
SOURCES_DIR = Path("/etc/apt/sources.list.d")
SRC_LIST = SOURCES_DIR / "mmlock-harness-src.sources"
CONFIGURE_FLAGS = (
    "--enable-static", "--disable-zlib", "--disable-pam", "--disable-lastlog", "--disable-utmp",
    "--disable-utmpx", "--disable-wtmp", "--disable-wtmpx", "--disable-loginfunc",
    "--disable-pututline", "--disable-pututxline",
)


def _recipe_key() -> str:
    return content_key(DROPBEAR_RECIPE, " ".join(CONFIGURE_FLAGS), DROPBEAR_OPTIONS.read_bytes())


# One build step of a source package: (name in error messages, argv, stdin).
Step = tuple[str, list[str], bytes | None]


def dropbear_for(arch: Arch, log_file: Path | None = None) -> Path:
    """Path of a static dropbear for the guest arch, built once and cached."""
    def prepare(source: Path, version: str, compiler: str, triplet: str) -> list[Step]:
        shutil.copy2(DROPBEAR_OPTIONS, source / "localoptions.h")
        return [
            ("./configure", ["./configure", f"--host={triplet}", f"CC={compiler}", *CONFIGURE_FLAGS], None),
            ("make", ["make", f"-j{_jobs()}", "PROGRAMS=dropbear", "STATIC=1", "dropbear"], None),
        ]
    return _static_from_source(arch, "dropbear", "dropbear", _recipe_key(), prepare, {}, log_file)


def busybox_from_source(arch: Arch, log_file: Path | None = None) -> Path:
    """A static busybox built from Debian's source package for the guest arch, cached."""
    def prepare(source: Path, version: str, compiler: str, triplet: str) -> list[Step]:
        # Debian's rules: os overrides first (empty for linux), then the
        # busybox-static flavour's config, settled by oldconfig.
        config = source / "debian" / "config" / "pkg" / "static"
        if not config.is_file():
            raise InfraError(f"busybox source {version} has no debian/config/pkg/static")
        os_config = source / "debian" / "config" / "os" / "linux"
        (source / ".config").write_text((os_config.read_text() if os_config.is_file() else "")
                                        + config.read_text())
        common = [f"CROSS_COMPILE={arch.cross_compile}", "SKIP_STRIP=y"]
        return [
            ("oldconfig", ["make", *common, "oldconfig"], b"\n" * 200),
            ("busybox", ["make", *common, f"-j{_jobs()}", "busybox"], None),
        ]
    return _static_from_source(arch, "busybox", "busybox-src", content_key(BUSYBOX_RECIPE, arch.cross_compile),
                               prepare, {"KCONFIG_NOTIMESTAMP": "1"}, log_file)


def _jobs() -> int:
    return min(os.cpu_count() or 1, 2)


def _static_from_source(arch: Arch, package: str, name: str, key: str,
                        prepare: Callable[[Path, str, str, str], list[Step]], env: dict[str, str],
                        log_file: Path | None) -> Path:
    """Debian's source package of `package`, built static with the arch's compiler by the steps
    `prepare` sets up, stripped, installed atomically as <cache>/userland/<debian_arch>/<name>
    with a stamp (<name>.json) holding `key`; reused while the key matches."""
    dest = cache_root() / "userland" / arch.debian_arch / name
    stamp = dest.with_name(f"{name}.json")
    try:
        if dest.is_file() and json.loads(stamp.read_text()).get("key") == key:
            return dest
    except (OSError, ValueError):
        pass
    compiler, triplet = _cross_compiler(arch)
    with tempfile.TemporaryDirectory(prefix=f"{package}-") as tmp:
        source, version = fetch_source(Path(tmp), package)
        steps = prepare(source, version, compiler, triplet)
        handle = open(log_file, "a") if log_file else open(os.devnull, "w")
        with handle:
            handle.write(f"# {package} {version} for {arch.debian_arch} ({triplet}), static\n")
            handle.flush()
            for label, argv, stdin in steps:
                proc = run_logged(argv, cwd=source, input=stdin, stdout=handle, stderr=subprocess.STDOUT,
                                  env=build_env(**env))
                if proc.returncode != 0:
                    raise BuildError(f"{package} failed to build for {arch.debian_arch} ({label} "
                                     f"exit {proc.returncode})" + (f"; see {log_file}" if log_file else ""))
        binary = source / package
        strip = shutil.which(f"{arch.cross_compile}strip")
        if strip:
            run_logged([strip, str(binary)])
        if not _is_static(binary):
            raise BuildError(f"{package} for {arch.debian_arch} is not statically linked")
        dest.parent.mkdir(parents=True, exist_ok=True)
        partial = dest.with_name(f".{name}.{os.getpid()}")
        shutil.copy2(binary, partial)
        os.replace(partial, dest)
    stamp.write_text(json.dumps({"key": key, "version": version, "triplet": triplet,
                                 "sha256": file_sha256(dest)}, indent=2) + "\n")
    log.info("built static %s %s for %s from source: %s", package, version, arch.debian_arch, dest)
    return dest


def _cross_compiler(arch: Arch) -> tuple[str, str]:
    """(path of the arch's gcc, its target triplet)."""
    compiler = require_tool(f"{arch.cross_compile}gcc")
    triplet = subprocess.run([compiler, "-dumpmachine"], capture_output=True, text=True,
                             check=False).stdout.strip()
    if not triplet:
        raise InfraError(f"{compiler} -dumpmachine printed nothing")
    return compiler, triplet


def _is_static(binary: Path) -> bool:
    """No PT_INTERP program header: the kernel runs it without a dynamic loader."""
    data = binary.read_bytes()[:4096]
    if data[:4] != b"\x7fELF":
        return False
    proc = subprocess.run(["readelf", "-l", str(binary)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return True  # no readelf: trust --enable-static
    return "INTERP" not in proc.stdout


def fetch_source(work: Path, package: str = "dropbear") -> tuple[Path, str]:
    """`apt-get source PACKAGE` into work; adds deb-src entries first if there are none."""
    if not shutil.which("dpkg-source"):
        raise InfraError("dpkg-source not found: apt-get source needs it (Debian package: dpkg-dev)")
    proc = run_logged(["apt-get", "source", "-qq", package], cwd=work, capture_output=True, text=True)
    if proc.returncode != 0 and "deb-src" in proc.stderr:
        enable_deb_src()
        proc = run_logged(["apt-get", "source", "-qq", package], cwd=work, capture_output=True,
                          text=True)
    trees = sorted(p for p in work.glob(f"{package}-*") if p.is_dir())
    if proc.returncode != 0 or not trees:
        raise InfraError(f"apt-get source {package} failed: {proc.stderr.strip()[-400:]}")
    dsc = sorted(work.glob(f"{package}_*.dsc"))
    match = re.match(rf"{re.escape(package)}_(.+)\.dsc$", dsc[0].name) if dsc else None
    return trees[0], match.group(1) if match else trees[0].name


def deb_src_stanzas(text: str) -> str:
    """deb822 .sources text -> the same stanzas with Types: deb-src (deb stanzas only)."""
    out = []
    for stanza in re.split(r"\n\s*\n", text.strip()):
        lines = [ln for ln in stanza.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
        types = [ln for ln in lines if ln.lower().startswith("types:")]
        if not types or "deb" not in types[0].split(":", 1)[1].split():
            continue
        out.append("\n".join("Types: deb-src" if ln in types else ln for ln in lines))
    return "\n\n".join(out) + "\n" if out else ""


def enable_deb_src() -> None:
    """Mirror the host's deb entries as deb-src (root only), then apt-get update."""
    if SRC_LIST.exists():
        return
    stanzas = ""
    for path in sorted(SOURCES_DIR.glob("*.sources")):
        stanzas += deb_src_stanzas(path.read_text()) + "\n"
    one_line = []
    for path in [Path("/etc/apt/sources.list"), *sorted(SOURCES_DIR.glob("*.list"))]:
        if path.is_file():
            one_line += [re.sub(r"^deb\s", "deb-src ", ln) for ln in path.read_text().splitlines()
                         if re.match(r"^deb\s", ln)]
    if not stanzas.strip() and not one_line:
        raise InfraError("no Debian package sources found to mirror as deb-src for the guest's source packages")
    if os.geteuid() != 0:
        raise InfraError("the guest's static dropbear (and busybox where Debian has no binary package) is "
                         "built from Debian's source package, which needs "
                         f"deb-src entries; as root add them (e.g. to {SRC_LIST}) and run apt-get update")
    log.info("adding deb-src entries (%s) to fetch the guest's source packages", SRC_LIST)
    if stanzas.strip():
        SRC_LIST.write_text("# Added by mmlock-harness: the guest's static dropbear is built from "
                            "Debian's source.\n" + stanzas.strip() + "\n")
    if one_line:
        SRC_LIST.with_suffix(".list").write_text("\n".join(one_line) + "\n")
    subprocess.run(["apt-get", "update", "-qq"], capture_output=True, check=False,
                   env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))


def guest_files(arch: Arch, log_file: Path | None = None) -> dict[str, tuple[Path, int]]:
    """What the SSH channel adds to the base initramfs: name in the archive -> (file, mode)."""
    init = REPO_ROOT / "guest" / "init"
    return {"bin/dropbear": (dropbear_for(arch, log_file), 0o755),
            "bin/net-up": (init / "net-up", 0o755),
            "bin/mmlock-cmd": (init / "mmlock-cmd", 0o755)}
