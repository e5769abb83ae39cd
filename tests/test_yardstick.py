"""stress-ng as a yardstick: run the way a person runs it, and its work shown."""
from __future__ import annotations

import pytest

from harness import configs, storm, yardstick
from harness.errors import ConfigError
from harness.record import RunRecord, StormFacts


@pytest.mark.parametrize("name", yardstick.STORMS)
def test_stress_ng_gets_a_disk_filesystem_for_its_temp_path(name):
    """On tmpfs its swap stressor cannot swapon its files and skips itself: the
    yardstick storms give --temp-path a disk filesystem of its own."""
    spec = configs.load_storm(name)
    assert spec.has_fs_disk and spec.swap_file_fs == "ext4" and spec.scratch_mb >= 256
    command = spec.stressors[0].command
    assert f"--temp-path {storm.SWAPFS_MOUNT}" in command and "--temp-path /tmp" not in command
    assert storm.swapfs_size_mb(spec) >= spec.scratch_mb
    # one more disk beside the swap disks, mounted by storm-run at SWAPFS_MOUNT
    env = storm.run_env(spec, 60, 1, "/dev/mmlock-swap3")
    assert f"DISKS={spec.swap_devices + 1}\n" in env and "SWAPFS_DEV=/dev/mmlock-swap3\n" in env
    assert 'SWAPFS_FILES=""' in env and "SWAPFS_TYPE=ext4\n" in env


def test_scratch_and_swap_files_share_one_filesystem_type(config_dir):
    path = config_dir / "storms/swapoff-fork-mmap.yaml"
    text = path.read_text()
    assert "scratch:\n  size_mb: 8\n" in text   # the shmem mode's room on the swap files' ext4
    path.write_text(text.replace("scratch:\n  size_mb: 8\n", "scratch:\n  size_mb: 64\n  fs: ext2\n"))
    with pytest.raises(ConfigError, match="one type for both, got ext2 and ext4"):
        configs.load_storm("swapoff-fork-mmap", config_dir)


VMSTAT = "nr_free_pages 1000\npswpin 120\npswpout 4711\nswap_ra 3\n"


def test_a_yardstick_that_swapped_is_counted():
    run = yardstick.YardstickRun(RunRecord(storm=StormFacts(ended_how="completed")), {"swap": 12, "fork": 300},
                                 yardstick.parse_vmstat(VMSTAT))
    assert run.vmstat == {"pswpin": 120, "pswpout": 4711}
    assert run.completed and run.swap_problem() == ""
    assert run.evidence() == {"swap_bogo_ops": 12, "pswpin": 120, "pswpout": 4711, "swapped": True}


@pytest.mark.parametrize("bogo, vmstat, problem", [
    ({}, VMSTAT, "no bogo ops"),
    ({"fork": 300}, VMSTAT, "did no swapon/swapoff (bogo ops missing)"),
    ({"swap": 0, "fork": 300}, VMSTAT, "did no swapon/swapoff (bogo ops 0)"),
    ({"swap": 5}, "pswpout 0\n", "wrote no page to swap"),
])
def test_a_yardstick_that_did_not_swap_says_why(bogo, vmstat, problem):
    run = yardstick.YardstickRun(RunRecord(), bogo, yardstick.parse_vmstat(vmstat))
    assert problem in run.swap_problem()
    assert run.evidence()["swapped"] is False and problem in run.evidence()["swap_problem"]
