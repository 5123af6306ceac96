"""newswatch collection side: collect → dedup → extract → store → match, the daemon and the CLI."""

__version__ = "0.1.0"
