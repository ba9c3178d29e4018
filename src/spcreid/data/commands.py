"""Subcommands of this package (filled in by its owner)."""


def register(subparsers) -> None:
    """Add this package's subcommands to the `spcreid` parser."""
