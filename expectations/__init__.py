"""Great Expectations quality gates: the raw and marts checkpoints, their suites and the outcome they return."""

from expectations.checkpoints import build_checkpoint, build_context, run_checkpoint
from expectations.datadocs import PruneReport, prune
from flows.contracts.quality import CheckpointOutcome, ExpectationOutcome, QualityGateFailed, ValidationPage

__all__ = [
    "CheckpointOutcome",
    "ExpectationOutcome",
    "PruneReport",
    "QualityGateFailed",
    "ValidationPage",
    "build_checkpoint",
    "build_context",
    "prune",
    "run_checkpoint",
]
