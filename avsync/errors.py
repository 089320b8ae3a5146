"""Errors that reach the user as one line and an exit code (never a traceback)."""

from __future__ import annotations

# Exit codes of `avsync check` (DESIGN.md, "Conventions").
EXIT_PASS = 0
EXIT_FAIL = 1
EXIT_UNMEASURED = 2
EXIT_BAD_INPUT = 3
EXIT_INTERNAL = 4  # a bug in avsync, not a property of the input: never a verdict


class AvsyncError(Exception):
    """An error the user can act on; its message is printed as one line."""

    exit_code = EXIT_BAD_INPUT


class BadInputError(AvsyncError):
    """The input cannot be read as the media we need (missing, corrupt, no stream)."""


class UsageError(AvsyncError):
    """The command line asks for something that does not make sense."""


class SourceError(AvsyncError):
    """A live source failed (unreachable, timed out, ended); it may be retried."""
