"""memtune: Linux memory tuning for fleets, driven by Ansible."""

__version__ = "0.1.0"
