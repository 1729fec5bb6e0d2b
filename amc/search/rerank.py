"""Re-ranking before choosing: a search's best few candidates re-scored on the whole search-val split.

A search scores hundreds of variants on a slice of search-val (1,000 images by default: a standard error near a
point at 90%), and the best of many noisy scores is biased upward: the winner is partly the luckiest. Re-scoring
the top few on every search-val image (the same BN re-estimation images, the same channel selection) and picking
the best of those removes most of that luck at the cost of a few evaluations.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from amc.problem import PruningProblem
from amc.problem.scoring import Scorer
from amc.search.candidates import Candidate


@dataclass(frozen=True)
class RerankedCandidate:
    episode: int
    cost: float
    search_accuracy: float
    """The score the search saw (on its slice of search-val)."""
    accuracy: float
    """The score on the whole search-val split."""


@dataclass(frozen=True)
class Reranking:
    """The candidates in the search's order (most rewarding first) and which one the whole split prefers."""

    images: int
    search_images: int
    candidates: tuple[RerankedCandidate, ...]
    chosen: int

    @property
    def order(self) -> list[int]:
        """Candidate indices by whole-split accuracy, best first (the search's order breaks ties)."""
        return sorted(range(len(self.candidates)), key=lambda index: (-self.candidates[index].accuracy, index))

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def verdict(self) -> str:
        best, chosen = self.candidates[0], self.candidates[self.chosen]
        head = (
            f"re-ranked the best {len(self.candidates)} candidates on all {self.images} search-val images (the search "
            f"scored {self.search_images}): "
        )
        if self.chosen == 0:
            return (
                f"{head}the search's best (episode {best.episode}) stays best: {100 * best.accuracy:.2f}% "
                f"(it scored {100 * best.search_accuracy:.2f}% on the slice)."
            )
        return (
            f"{head}episode {chosen.episode} is best, {100 * chosen.accuracy:.2f}% vs {100 * best.accuracy:.2f}% "
            f"for the search's best (episode {best.episode}, which scored {100 * best.search_accuracy:.2f}% on the "
            "slice); it is the result."
        )


def rerank(problem: PruningProblem, candidates: list[Candidate], scorer: Scorer, images: int) -> Reranking:
    """Score each candidate's variant with `scorer` (the whole split); `images` is how many it scores on."""
    rows = tuple(
        RerankedCandidate(row.episode, row.cost, row.accuracy, float(scorer(problem.apply(decisions))))
        for row, _, decisions in candidates
    )
    order = sorted(range(len(rows)), key=lambda index: (-rows[index].accuracy, index))
    search_images = int(getattr(problem.scorer, "images", 0))
    return Reranking(images, search_images, rows, order[0])
