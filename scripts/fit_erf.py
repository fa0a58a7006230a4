"""Fit the rational approximation of erf used by tinyminilm/model.py, and print its coefficients and errors.

    erf(x) ≈ x · P(x²) / Q(x²)  on |x| ≤ 4,  P of degree 6, Q of degree 4 with Q(0) = 1

Linearized least squares (x·P − erf·Q = 0) on Chebyshev nodes, re-weighted by 1/|Q| each round
(Sanathanan–Koerner iteration), in float64 against math.erf. Run: python scripts/fit_erf.py
"""

from __future__ import annotations

import math

import numpy as np

CLIP, DEG_P, DEG_Q = 4.0, 6, 4


def fit(deg_p: int = DEG_P, deg_q: int = DEG_Q, nodes: int = 4000, rounds: int = 30) -> tuple[np.ndarray, np.ndarray]:
    x = (CLIP / 2) * (1 - np.cos(np.pi * (np.arange(nodes) + 0.5) / nodes))
    x = np.append(x, CLIP)
    f = np.array([math.erf(v) for v in x])
    t = x * x
    w = np.ones_like(x)
    for _ in range(rounds):
        a = np.concatenate([x[:, None] * t[:, None] ** np.arange(deg_p + 1),
                            -f[:, None] * t[:, None] ** np.arange(1, deg_q + 1)], axis=1)
        sol, *_ = np.linalg.lstsq(a * w[:, None], f * w, rcond=None)
        p, q = sol[:deg_p + 1], np.concatenate([[1.0], sol[deg_p + 1:]])
        w = 1 / np.abs(np.polyval(q[::-1], t))
    return p, q


def main() -> None:
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tinyminilm.model import erf

    p, q = fit()
    print("_ERF_P =", tuple(float(c) for c in p))
    print("_ERF_Q =", tuple(float(c) for c in q))
    x = np.linspace(-6, 6, 1_200_001).astype(np.float32)
    ref = np.array([math.erf(float(v)) for v in x])
    print(f"max |tinyminilm.model.erf - math.erf| in float32: {np.abs(erf(x) - ref).max():.3g}")


if __name__ == "__main__":
    main()
