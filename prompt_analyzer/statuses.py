"""The states of batches, jobs and pairs, and the classes of errors, as the contract names them.

``StrEnum`` members are strings: they are written through SQL parameters and compared with what the
database returns.  SQL *filters* on a status keep their literal (``WHERE status <> 'success'``) where a
partial index is defined by that literal: a parameter there would keep a generic prepared plan from
using the index.
"""

from __future__ import annotations

from enum import StrEnum


class BatchStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"  # every pair succeeded
    COMPLETED_WITH_ERRORS = "completed_with_errors"  # every pair ended, some in error
    INTERRUPTED = "interrupted"  # stopped by a signal; the same key resumes it
    FAILED = "failed"
    SUBMITTED = "submitted"  # batch mode, --detach: provider batches are under way; `collect` or the key resumes

    @property
    def finished(self) -> bool:
        """A finished batch is not run again under its key (``rerun`` calls its failures)."""
        return self in (BatchStatus.COMPLETED, BatchStatus.COMPLETED_WITH_ERRORS)


FINISHED: tuple[BatchStatus, ...] = (BatchStatus.COMPLETED, BatchStatus.COMPLETED_WITH_ERRORS)


class JobStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"  # every platform ended, at least one succeeded
    FAILED = "failed"  # every platform failed


class PairStatus(StrEnum):
    """An ``ai_responses`` row; no row at all means the pair is still pending."""

    PROCESSING = "processing"  # claimed: a call is under way (``claimed_by`` until ``claim_expires_at``)
    SUCCESS = "success"
    ERROR = "error"


class ErrorClass(StrEnum):
    """``ai_responses.error_class``: why a pair ended in error."""

    RATE_LIMITED = "rate_limited"
    QUOTA_EXHAUSTED = "quota_exhausted"  # the provider's hint (or rpd) is longer than a retry may wait
    TRANSIENT = "transient"
    PERMANENT = "permanent"
    AUTH = "auth"
    MALFORMED = "malformed"
    CIRCUIT_OPEN = "circuit_open"  # not called: the platform's breaker opened
    BUDGET_EXHAUSTED = "budget_exhausted"  # not called: max_cost_usd reached
    INTERRUPTED = "interrupted"  # a stop came before the answer; claimed again by a resume
    UNWRITABLE = "unwritable"  # the database refused the answer
    INTERNAL = "internal"  # a bug of ours or an SDK surprise


class ProviderBatchState(StrEnum):
    """``provider_batches.state``: where one provider batch (OpenAI Batch, Anthropic Message Batch,
    Gemini batch job) stands, in our words; ``provider_state`` keeps the provider's own."""

    SUBMITTING = "submitting"  # recorded before the submit: a crash here is looked up on resume
    IN_PROGRESS = "in_progress"  # the provider has it (validating, running, finalizing)
    ENDED = "ended"  # the provider finished it; results not yet written
    COLLECTED = "collected"  # every result written (answers, errors)
    EXPIRED = "expired"  # the provider gave up (24 h); unanswered pairs are resumable
    CANCELLED = "cancelled"
    FAILED = "failed"  # the provider refused the whole batch (validation)
    ABANDONED = "abandoned"  # a submit that never reached the provider (looked up, not found)

    @property
    def open(self) -> bool:
        """Still to be polled or collected."""
        return self in (ProviderBatchState.SUBMITTING, ProviderBatchState.IN_PROGRESS, ProviderBatchState.ENDED)
