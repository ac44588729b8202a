"""`coursewright audit …` and `coursewright launch-gate`: the operator's quality reports (SPEC O1–O4, O6).
Each command prints its report, writes it to a dated file with --out, and exits non-zero on a finding where
the issue asks for a gate."""

from __future__ import annotations

import click


@click.group()
def audit() -> None:
    """Coverage, traffic and integrity reports."""
