"""Per-step balanced sampling of one shape's training set (method.md section 3).

Each step draws, with replacement, half its samples near the surface (|sdf| <= threshold), a
quarter outside and a quarter inside, so thin parts and the far field both stay supervised
whatever the set's own balance. A pool that is empty (a shape with no inside points at this
lattice, a threshold so small nothing is near) gives its share to the other pools in proportion.
"""

from __future__ import annotations

import torch

SHARES = (0.5, 0.25, 0.25)  # near, outside, inside


class BalancedSampler:
    def __init__(self, sdf: torch.Tensor, near_threshold: float) -> None:
        sdf = sdf.detach().reshape(-1)
        if sdf.numel() == 0:
            raise ValueError("cannot sample from an empty training set")
        self.pools = (
            torch.nonzero(sdf.abs() <= near_threshold).flatten(),
            torch.nonzero(sdf > 0).flatten(),
            torch.nonzero(sdf < 0).flatten(),
        )

    def counts(self, n: int) -> list[int]:
        """How many indices each pool gives for a draw of ``n`` (empty pools give none)."""
        shares = [s if len(p) else 0.0 for s, p in zip(SHARES, self.pools, strict=True)]
        total = sum(shares)
        counts = [int(n * s / total) for s in shares]
        for k in range(n - sum(counts)):  # hand the rounding remainder to non-empty pools in order
            live = [i for i, s in enumerate(shares) if s > 0]
            counts[live[k % len(live)]] += 1
        return counts

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` indices into the sdf tensor (LongTensor), drawn with replacement."""
        parts = []
        for pool, count in zip(self.pools, self.counts(n), strict=True):
            if count:
                pick = torch.randint(len(pool), (count,), generator=generator, device=pool.device)
                parts.append(pool[pick])
        return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.long)
