"""The build stage of a run: the kernel (checked for what the storm needs first), the
guest image, and the accelerator the kernel will boot under."""
from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness import image as image_stage
from harness import qemu, requires
from harness.configs import load_profile, profile_names
from harness.image import GuestImage
from harness.kernel import build as kernel_build
from harness.kernel import source as kernel_source
from harness.kernel.build import KernelBuild
from harness.plan import Plan
from harness.record import Draft, ImageFacts, KernelFacts, QemuFacts
from harness.terminal import say


@dataclass(frozen=True)
class Built:
    """What a run boots: the kernel, the guest image, the accelerator chosen for them."""

    kernel: KernelBuild
    guest: GuestImage
    accel: str
    accel_reason: str


def preempt_model(config_text: str) -> str:
    """The preemption model a built kernel's .config chose: none, voluntary or full."""
    for option, model in (("CONFIG_PREEMPT_NONE=y", "none"), ("CONFIG_PREEMPT_VOLUNTARY=y", "voluntary"),
                          ("CONFIG_PREEMPT=y", "full")):
        if option in config_text.splitlines():
            return model
    return "unknown"


def build(plan: Plan, run_dir: Path, draft: Draft, enter: Callable[[str], None]) -> Built:
    """Kernel and image into the cache (build.log in run_dir), their facts into the draft."""
    request, arch, profile, storm = plan.request, plan.arch, plan.profile, plan.storm
    build_log = run_dir / "build.log"
    build_log.write_text(f"# build log of run {run_dir.name}: kernel, module and stressors\n")
    t0 = time.monotonic()
    enter("build")
    say("build: kernel")
    source = kernel_source.resolve(request.kernel_src, request.kernel_version)
    draft.set(kernel=KernelFacts(version=source.version, source=source.origin, profile=request.profile,
                                 preempt=request.preempt,   # as asked; from the built config once there is one
                                 source_identity=source.identity, commit=source.commit))  # kept by a build error
    # Before compiling: does this kernel have what the storm's modes need?
    if request.storm_enabled:
        profiles = {name: "".join(p.read_text() for p in load_profile(name).fragments)
                    for name in profile_names() if name != request.profile}
        requires.check(storm, kernel_build.configure(source, arch, profile, build_log),
                       f"{source.origin} with profile {profile.name}", profiles=profiles)
    kernel = kernel_build.build_kernel(source, arch, profile, build_log)
    say(f"build: kernel {kernel_build.how_built(kernel)}; guest image")
    enter("image")
    guest = image_stage.build_image(kernel, build_log, request.guest_binaries)
    with open(build_log, "a") as handle:
        handle.write(f"kernel: {'cache hit' if kernel.cached else 'built'} {kernel.key} ({source.origin})\n"
                     f"image: {'cache hit' if guest.cached else 'built'} {guest.initramfs}\n")
    draft.durations(build_s=round(time.monotonic() - t0, 2))
    shutil.copy2(kernel.config, run_dir / "kernel.config")
    draft.kernel(preempt=preempt_model(kernel.config.read_text()), config_sha256=kernel.config_sha256,
                 image_sha256=kernel.image_sha256, compiler=kernel.compiler, cached=kernel.cached,
                 build_key=kernel.key, vmlinux=str(kernel.vmlinux))
    draft.set(image=ImageFacts(initramfs_sha256=guest.sha256, cached=guest.cached))

    accel, accel_reason = qemu.choose_accel(request.accel, arch, kernel.image)
    draft.set(accel=accel, accel_reason=accel_reason,
              qemu=QemuFacts(binary=arch.qemu_binary, version=qemu.qemu_version(arch.qemu_binary)))
    say(f"boot: accel={accel} ({accel_reason})")
    return Built(kernel, guest, accel, accel_reason)
