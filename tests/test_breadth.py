"""The breadth storm's data and harness side, without a guest: swap backends
(zram, zswap, ext4 swap files)."""
import struct

import pytest

from harness import configs, storm
from harness.errors import ConfigError


def test_zswap_zram_and_ext4_reach_the_guest():
    spec = configs.load_storm("breadth")
    assert storm.kernel_append(spec).endswith("zswap.enabled=1 zswap.max_pool_percent=8")
    assert "zswap" not in storm.kernel_append(configs.load_storm("swapoff-fork-mmap"))
    env = storm.run_env(spec, 60, 1, "/dev/vdd")
    assert "ZRAM_MB=16\n" in env and "ZSWAP=1\n" in env
    assert "SWAPFS_TYPE=ext4\n" in env


def test_bad_swap_backend_values(config_dir):
    path = config_dir / "storms/breadth.yaml"
    text = path.read_text()
    path.write_text(text.replace("fs: ext4", "fs: btrfs"))
    with pytest.raises(ConfigError, match="key 'swap.files.fs': must be one of ext2, ext4, not 'btrfs'"):
        configs.load_storm("breadth", config_dir)
    path.write_text(text.replace("    priority: 20", "    priority: 20\n    prio: 3"))
    with pytest.raises(ConfigError, match="key 'swap.zram.prio': unknown key"):
        configs.load_storm("breadth", config_dir)


def test_make_swapfs_ext4_on_the_host(tmp_path):
    image = tmp_path / "swapfs.img"
    with open(image, "wb") as handle:
        handle.truncate(16 << 20)
    storm.make_swapfs(image, "ext4", tmp_path / "build.log")
    superblock = image.read_bytes()[1024:2048]
    magic, = struct.unpack_from("<H", superblock, 0x38)
    incompat, = struct.unpack_from("<I", superblock, 0x60)
    assert magic == 0xEF53 and incompat & 0x40, "ext4 with extents"
    assert "mke2fs" in (tmp_path / "build.log").read_text()
