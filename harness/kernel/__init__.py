"""Kernel source, configuration and build stages."""
