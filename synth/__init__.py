"""Program synthesis: the LLM client, its response cache and budgets, and code extraction."""

from synth.llm.budget import Budget, Ledger, Prices, UsageReport
from synth.llm.cache import ResponseCache, StoredResponse
from synth.llm.extract import Extraction, extract_code
from synth.llm.client import (
    BudgetExceeded,
    Completion,
    LLMClient,
    LLMConfig,
    LLMError,
    LLMModelNotFound,
    LLMRequestRejected,
    LLMRetriesExhausted,
    LLMUnavailable,
)

__all__ = [
    "Budget",
    "BudgetExceeded",
    "Completion",
    "Extraction",
    "LLMClient",
    "LLMConfig",
    "LLMError",
    "LLMModelNotFound",
    "LLMRequestRejected",
    "LLMRetriesExhausted",
    "LLMUnavailable",
    "Ledger",
    "Prices",
    "ResponseCache",
    "StoredResponse",
    "UsageReport",
    "extract_code",
]
