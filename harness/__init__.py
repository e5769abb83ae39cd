"""QEMU-driven guest test harness for Linux kernel memory-management locking."""

__version__ = "0.1.0"
