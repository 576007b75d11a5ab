"""The ``memtune`` command: its subcommands, options and exit codes."""
