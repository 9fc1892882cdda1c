"""The harness every search method runs in: LLM calls, scoring, budget, log, checkpoint.

A method (GIF-MCTS, WorldCoder, zero-shot) only decides what to ask next
(`propose`) and what to do with the answer (`integrate`). The harness keeps up
to `concurrency` LLM calls in flight, scores each answer in the sandbox,
appends every node to the tree log, and writes a checkpoint after every node,
so a killed run resumes where it stopped. Each expansion is exactly one LLM
call, and the budget counts calls.

With a `fit` callable, every working program whose strict train accuracy is
below 1.0 has its constants fitted before the method decides its next call;
a changed, valid result becomes a node of its own (action "fit"), counted
apart from the call budget (docs/search.md).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from cwm_jax.sandbox.messages import SandboxError
from cwm_jax.score.scoring import ScoreResult
from cwm_jax.score.likelihood import LIKELIHOOD_VALUE
from synth import prompts
from synth.llm.client import BudgetExceeded, LLMClient, LLMError, LLMModelNotFound, LLMRequestRejected, LLMUnavailable
from synth.llm.extract import Extraction, extract_code
from synth.search.node import VALUE_METRICS, Node, counterexample_key
from synth.search.protocol import Fitter, Method, Request, Sampling

__all__ = ["CHECKPOINT_VERSION", "READABLE_CHECKPOINT_VERSIONS", "Harness", "Scorer"]

CHECKPOINT_VERSION = 3  # 3: a method's statistics of its nodes beside the node records, not in them
READABLE_CHECKPOINT_VERSIONS = (2, 3)
Scorer = Callable[[str], ScoreResult]


class Harness:
    """Runs a method against an LLM and a scorer within a budget of calls.

    Args:
      llm: the client (its cache makes runs replayable).
      score: program source -> ScoreResult on the train split (the sandbox).
      budget: number of LLM calls.
      out_dir: where the tree log and the checkpoint go (None: nowhere).
      concurrency: LLM calls in flight at once.
      sampling: sampling parameters.
      on_node: called as on_node(harness, method) after every integrated node.
      value_metric: the search value, "paper" (the authors' reward-weighted
        accuracy) or "strict" (fraction of transitions entirely right).
      fit: program -> FitReport; None: no fit step (the paper's behaviour).
    """

    def __init__(
        self,
        llm: LLMClient,
        score: Scorer,
        *,
        budget: int,
        out_dir: str | Path | None = None,
        concurrency: int = 1,
        sampling: Sampling = Sampling(),
        on_node: Callable[[Harness, Method], None] | None = None,
        value_metric: str = "paper",
        fit: Fitter | None = None,
    ):
        if budget < 1:
            raise ValueError(f"budget must be at least 1 call, got {budget}")
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        if value_metric not in VALUE_METRICS:
            raise ValueError(f"value_metric must be one of {', '.join(VALUE_METRICS)}, got {value_metric!r}")
        self.llm = llm
        self.score = score
        self.budget = budget
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.concurrency = concurrency
        self.sampling = sampling
        self.on_node = on_node
        self.value_metric = value_metric
        self.fit = fit
        self.fits = 0  # fit nodes added (no LLM call, not in the budget)
        self.fit_attempts = 0
        self.fit_seconds = 0.0
        self.calls = 0  # integrated calls, failed ones included
        self.failed_calls = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.prompt_counts: Counter[str] = Counter()
        self.stop_reason = ""
        self.seconds = 0.0  # wall-clock of earlier sessions of a resumed run
        self.llm_seconds = 0.0
        self.score_seconds = 0.0

    # -- the loop -------------------------------------------------------------------

    async def run(self, method: Method) -> None:
        start = time.perf_counter() - self.seconds
        inflight: dict[asyncio.Task, Request] = {}
        order = 0
        try:
            while True:
                while (not self.stop_reason and not method.solved and len(inflight) < self.concurrency
                       and self.calls + len(inflight) < self.budget):
                    request = method.propose()
                    if request is None:
                        break
                    key = prompts.prompt_hash(request.messages)
                    # The n-th identical prompt asks for sample n, so repeats are
                    # new samples live and distinct entries in the cache.
                    index = self.prompt_counts[key] + sum(
                        prompts.prompt_hash(r.messages) == key for r in inflight.values())
                    task = asyncio.create_task(self._expand(request, key, index))
                    task.order = order  # type: ignore[attr-defined]
                    order += 1
                    inflight[task] = request
                if not inflight:
                    break
                done, _ = await asyncio.wait(inflight, return_when=asyncio.FIRST_COMPLETED)
                for task in sorted(done, key=lambda t: t.order):  # type: ignore[attr-defined]
                    request = inflight.pop(task)
                    outcome = task.result()
                    if outcome == "budget":
                        continue
                    node, key, fitted = outcome
                    self.calls += 1
                    self.prompt_counts[key] += 1
                    method.integrate(request, node)
                    if node is not None:
                        self._log(method, node)
                    if node is not None and fitted is not None:
                        self.fits += 1
                        method.integrate_fit(node.id, fitted)
                        self._log(method, fitted)
                    self.seconds = time.perf_counter() - start
                    self.checkpoint(method)
                    if self.on_node is not None:
                        self.on_node(self, method)
        finally:
            for task in inflight:
                task.cancel()
            self.seconds = time.perf_counter() - start
        if not self.stop_reason:
            self.stop_reason = "solved" if method.solved else (
                "budget" if self.calls >= self.budget else "exhausted")

    async def _expand(self, request: Request, key: str, index: int):
        start = time.perf_counter()
        messages, lead, extra = request.messages, "", None
        if self.sampling.prefill:
            messages, lead = prompts.with_prefill(messages, request.action)
            extra = {"continue_final_message": True, "add_generation_prompt": False}
        try:
            [completion] = await self.llm.complete(
                messages, n=1, sample_offset=index, temperature=self.sampling.temperature,
                top_p=self.sampling.top_p, max_tokens=self.sampling.max_tokens, extra_body=extra)
        except BudgetExceeded as exc:
            self.stop_reason = f"budget: {exc}"
            return "budget"
        except LLMError as exc:
            if _fatal(exc):
                raise  # no later call can succeed: stop the run (the checkpoint allows --resume)
            # A failed call is spent but adds no node; the search goes on.
            self.failed_calls += 1
            self.llm_seconds += time.perf_counter() - start
            self._log_event({"event": "llm_error", "parent": request.parent, "action": request.action,
                             "prompt_hash": key, "error": str(exc)})
            return None, key, None
        self.llm_seconds += time.perf_counter() - start
        if not completion.cached:
            self.prompt_tokens += completion.prompt_tokens
            self.completion_tokens += completion.completion_tokens
        node = Node(id=-1, parent=request.parent, action=request.action, prompt_hash=key,
                    tokens=completion.prompt_tokens + completion.completion_tokens,
                    completion=lead + completion.text, feedback=request.feedback)
        try:
            extracted = extract_code(node.completion, avoid=request.program)
        except Exception as exc:  # noqa: BLE001 - a candidate can fail, the run cannot
            extracted = Extraction("", truncated=False, method="none", after_correct_code_heading=False)
            node.note = f"the code could not be extracted from the answer ({type(exc).__name__})"
        node.explanation = extracted.explanation
        if extracted.repeats_avoided:
            node.note = "the answer's only program repeats the program in the prompt"
        score_start = time.perf_counter()
        fitted = None
        if not extracted.code.strip():
            node.buggy = True
            node.error = ("the answer contained no Python code; answer with the complete module in one "
                          "```python code block")
        else:
            node.program = extracted.code
            await self._score_into(node)
            if node.buggy and extracted.truncated:
                node.error += "\n(the answer was cut off before the end of the program; write a shorter program)"
            if self.fit is not None and not node.buggy and node.metrics["strict"] < 1.0:
                fitted = await self._fitted(node)
        self.score_seconds += time.perf_counter() - score_start
        node.seconds = time.perf_counter() - start
        return node, key, fitted

    async def _score_into(self, node: Node) -> None:
        """Scores node.program on the train split and records value, metrics, counterexample, fingerprint."""
        try:
            result = await asyncio.to_thread(self.score, node.program)
        except SandboxError:
            raise  # the sandbox itself failed (no worker starts): no later candidate can be scored
        except Exception as exc:  # noqa: BLE001 - a candidate can fail, the run cannot
            result = ScoreResult(valid=False, error=f"the program could not be scored: {type(exc).__name__}: "
                                                    f"{str(exc)[:400]}", error_kind="runtime")
        if not result.valid:
            node.buggy = True
            node.error = result.error
            return
        summary = result.summary or {}
        # Scored by likelihood (a stochastic environment, docs/chance.md): its value is the search's value.
        node.metrics = {name: float(summary.get(LIKELIHOOD_VALUE, summary[key])) for name, key in VALUE_METRICS.items()}
        node.value = node.metrics[self.value_metric]
        node.counterexample = result.counterexamples
        # Which transitions and elements are right (the sandbox's digest), and the first failure with its
        # predictions up to float noise and signed zeros: the same predictions for all the search can tell.
        digest = json.dumps([summary, result.fingerprint, counterexample_key(result.counterexamples)],
                            sort_keys=True, default=str)
        node.fingerprint = hashlib.sha256(digest.encode()).hexdigest()[:16]

    async def _fitted(self, node: Node) -> Node | None:
        """The fit child of `node`: its program with fitted constants, if that changed and is valid."""
        start = time.perf_counter()
        self.fit_attempts += 1
        try:
            report = await asyncio.to_thread(self.fit, node.program)
        except SandboxError:
            raise
        except Exception:  # noqa: BLE001 - a failed fit adds no child; the node keeps its score
            return None
        finally:
            self.fit_seconds += time.perf_counter() - start
        if not report.valid or not report.changed or report.program.strip() == node.program.strip():
            return None
        child = Node(id=-1, parent=None, action="fit", program=report.program,
                     note="constants fitted to the train split: " + _changes_text(report.changed))
        await self._score_into(child)
        child.seconds = time.perf_counter() - start
        return None if child.buggy else child

    # -- results --------------------------------------------------------------------

    @staticmethod
    def best(method: Method) -> Node | None:
        """The highest-valued valid program (earliest wins ties), or None."""
        best = None
        for node in method.nodes:
            if node.action != "root" and not node.buggy and (best is None or node.value > best.value):
                best = node
        return best

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    # -- persistence ----------------------------------------------------------------

    def _log(self, method: Method, node: Node) -> None:
        self._log_event(_record(method, node))

    def _log_event(self, record: dict) -> None:
        if self.out_dir is None:
            return
        with open(self.out_dir / "tree.jsonl", "a") as handle:
            handle.write(json.dumps(record) + "\n")

    def state_dict(self) -> dict:
        return {
            "calls": self.calls, "failed_calls": self.failed_calls, "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens, "prompt_counts": dict(self.prompt_counts),
            "seconds": self.seconds, "llm_seconds": self.llm_seconds, "score_seconds": self.score_seconds,
            "fits": self.fits, "fit_attempts": self.fit_attempts, "fit_seconds": self.fit_seconds,
        }

    def load_state_dict(self, state: dict) -> None:
        self.calls, self.failed_calls = state["calls"], state["failed_calls"]
        self.prompt_tokens, self.completion_tokens = state["prompt_tokens"], state["completion_tokens"]
        self.prompt_counts = Counter(state["prompt_counts"])
        self.seconds, self.llm_seconds, self.score_seconds = (
            state["seconds"], state["llm_seconds"], state["score_seconds"])
        self.fits, self.fit_attempts, self.fit_seconds = state["fits"], state["fit_attempts"], state["fit_seconds"]

    def checkpoint(self, method: Method) -> None:
        """Writes the whole search state atomically (a kill never leaves half a file)."""
        if self.out_dir is None:
            return
        payload = {"version": CHECKPOINT_VERSION, "method": method.name, "harness": self.state_dict(),
                   "search": method.state_dict()}
        fd, tmp = tempfile.mkstemp(dir=self.out_dir, suffix=".tmp")
        with os.fdopen(fd, "w") as handle:
            json.dump(payload, handle)
        os.replace(tmp, self.out_dir / "checkpoint.json")

    def resume(self, method: Method) -> bool:
        """Loads the checkpoint in out_dir into the harness and `method`, if there is one."""
        path = self.out_dir / "checkpoint.json" if self.out_dir else None
        if path is None or not path.exists():
            return False
        payload = json.loads(path.read_text())
        if payload.get("version") not in READABLE_CHECKPOINT_VERSIONS:
            raise ValueError(
                f"{path} is a checkpoint of format {payload.get('version')}, written by another version of "
                f"cwm-jax (this one reads formats {', '.join(map(str, READABLE_CHECKPOINT_VERSIONS))}); "
                "start a new run in another --out directory")
        if payload.get("method") != method.name:
            raise ValueError(
                f"{path} holds a checkpoint of method {payload.get('method')!r}, not {method.name!r}; "
                "use another --out directory or the same --method")
        self.load_state_dict(payload["harness"])
        method.load_state_dict(payload["search"])
        # The log may hold nodes written after the last checkpoint: rewrite it from the checkpoint.
        self.rewrite_log(method)
        return True

    def rewrite_log(self, method: Method) -> None:
        """tree.jsonl from the method's nodes as they are now (final visits and values), events kept."""
        if self.out_dir is None:
            return
        path = self.out_dir / "tree.jsonl"
        lines = path.read_text().splitlines() if path.exists() else []
        events = [line for line in lines if _is_event(line)]
        with open(path, "w") as handle:
            for node in method.nodes:
                if node.action != "root":
                    handle.write(json.dumps(_record(method, node)) + "\n")
            for line in events:
                handle.write(line + "\n")


def _is_event(line: str) -> bool:
    try:
        return "event" in json.loads(line)
    except ValueError:
        return False  # a line cut off by a kill


def _record(method: Method, node: Node) -> dict:
    parent = method.nodes[node.parent] if node.parent is not None else None
    return node.log_record(parent.program if parent is not None else "", method.log_fields(node))


def _fatal(error: LLMError) -> bool:
    """Errors that end a run: the endpoint is gone, the model unknown, the key refused."""
    if isinstance(error, (LLMUnavailable, LLMModelNotFound)):
        return True
    return isinstance(error, LLMRequestRejected) and error.status_code in (401, 403)


def _changes_text(changed) -> str:
    """`GRAVITY 9.8 -> 11.37, FORCE 10 -> 7.58725` from a FitReport's `changed`."""
    return ", ".join(f"{c['name']} {c['old']:g} -> {c['new']:g}" for c in changed)
