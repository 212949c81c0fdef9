"""Great Expectations quality gates: the raw and marts checkpoints, their suites and the outcome they return."""

from expectations.checkpoints import build_checkpoint, build_context, run_checkpoint
from expectations.results import CheckpointOutcome, ExpectationOutcome, QualityGateFailed

__all__ = [
    "CheckpointOutcome",
    "ExpectationOutcome",
    "QualityGateFailed",
    "build_checkpoint",
    "build_context",
    "run_checkpoint",
]
