"""The top floor: the `prunebench` command, composed from each layer's subcommands."""
