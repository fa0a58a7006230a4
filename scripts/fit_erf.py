"""Fit the polynomial behind tinyminilm/model.py's erf and GELU; print its coefficients and errors.

GELU needs Φ, the standard normal CDF. Φ(x) = σ(ℓ(x)) where ℓ = logit Φ is odd, and ℓ(x)/x is smooth and even:

    ℓ(x) ≈ x · P(x²),  P of degree 6, on |x| ≤ 5.5   (beyond that Φ rounds to 0 or 1 in float32)

so GELU(x) = x · σ(ℓ(x)) and erf(x) = tanh(ℓ(√2·x) / 2). The weights of the least-squares fit follow how an error
in ℓ moves Φ (dΦ/dℓ = Φ(1 − Φ)), then are raised where the error is largest for a few rounds (near-minimax).
The tanh approximation of GELU is the degree-1 case: P(t) = 2√(2/π)(1 + 0.044715 t).
Run: python scripts/fit_erf.py
"""

from __future__ import annotations

import math

import numpy as np

CLIP, DEGREE = 5.5, 6


def logit_phi_over_x(u: float) -> float:
    if u == 0:
        return 2 * math.sqrt(2 / math.pi)  # the limit: ℓ'(0) = 2·φ(0)/(Φ(0)(1 − Φ(0))) = 2√(2/π)
    return (math.log(0.5 * math.erfc(-u / math.sqrt(2))) - math.log(0.5 * math.erfc(u / math.sqrt(2)))) / u


def fit(degree: int = DEGREE, nodes: int = 3000, rounds: int = 20) -> np.ndarray:
    u = np.concatenate([np.linspace(0, CLIP, nodes), CLIP * np.sin(np.pi / 2 * (np.arange(nodes) + 0.5) / nodes)])
    f = np.array([logit_phi_over_x(v) for v in u])
    phi = np.array([0.5 * math.erfc(-v / math.sqrt(2)) for v in u])
    w = phi * (1 - phi) * np.maximum(u, 1e-3) + 1e-9  # how an error in P moves Φ
    a = (u * u)[:, None] ** np.arange(degree + 1)
    c, *_ = np.linalg.lstsq(a * w[:, None], f * w, rcond=None)
    for _ in range(rounds):
        err = np.abs(a @ c - f) * w
        w2 = w * (1 + 3 * err / err.max())
        c, *_ = np.linalg.lstsq(a * w2[:, None], f * w2, rcond=None)
    return c


def main() -> None:
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tinyminilm import model

    c = fit()
    print("_LOGIT_PHI =", tuple(float(v) for v in c))
    print("in model.py:", model._LOGIT_PHI, "same:", np.allclose(c, model._LOGIT_PHI, rtol=1e-9, atol=0))
    x = np.linspace(-8, 8, 800_001).astype(np.float32)
    erf_ref = np.array([math.erf(float(v)) for v in x])
    gelu_ref = np.array([float(v) * 0.5 * math.erfc(-float(v) / math.sqrt(2)) for v in x])
    print(f"max |erf - math.erf| in float32:  {np.abs(model.erf(x) - erf_ref).max():.3g}")
    print(f"max |gelu - exact gelu| in float32 on [-8, 8]: {np.abs(model.gelu(x) - gelu_ref).max():.3g}")


if __name__ == "__main__":
    main()
