"""One LLM client shared by runs in flight in several threads (the benchmark's tasks): one limit, own caches."""

from __future__ import annotations

import asyncio
import threading

from synth.llm.client import LLMClient, LLMConfig
from synth.testing.llm_server import LLMTestServer


def test_sharing_holds_the_concurrency_limit_across_threads_and_keeps_caches_apart(tmp_path):
    with LLMTestServer(latency=0.2) as server:
        shared = LLMClient(LLMConfig(model=server.model, base_url=server.base_url, max_concurrency=2))
        runs = [shared.sharing(cache=tmp_path / f"task{k}.sqlite") for k in range(3)]
        answers: dict[int, list[str]] = {}

        def task(k: int) -> None:
            async def main() -> list[str]:
                # Each task asks the same prompt (as seeds do) for 2 samples at once: 6 requests in all.
                try:
                    return [c.text for c in await runs[k].complete("same prompt", n=2, temperature=1.0)]
                finally:
                    await runs[k].aclose()

            answers[k] = asyncio.run(main())

        threads = [threading.Thread(target=task, args=(k,)) for k in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert server.max_in_flight == 2  # 3 tasks x 2 samples, never more than the shared limit
        # Each run has its own cache and usage: all three sent their requests, none replayed another's.
        assert [runs[k].usage().cached for k in range(3)] == [0, 0, 0]
        assert sum(runs[k].usage().http_requests for k in range(3)) == server.requests_total
        assert len({tuple(a) for a in answers.values()}) == 3  # distinct samples, not one answer replayed
