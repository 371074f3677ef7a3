"""How far a backend may be from the float64 reference, by the precision it computes in.

The measure, per layer output: the largest absolute difference divided by the larger of 1
and the layer's largest absolute reference value. Two backends compared with each other may
differ by the sum of their tolerances. In a whole network a layer may also carry the errors
of the layers before it: layer i (counting from 1) is allowed i times the tolerance.

Why these numbers (measured worst cases in the README's "Checking backends agree"):
- fp64: float64 arithmetic still sees float32 inputs, float32 folded batch-norm parameters
  and a float32 result (the Backend contract): a few float32 roundings, 4e-7 measured.
- fp32: float32 sums in any order, including Darknet's own sequential one over a softmax
  of a few thousand values (numpy-exact: 6e-5 measured).
- tf32, fp16: products of operands rounded to 10 mantissa bits (2^-11 relative each).
"""

from __future__ import annotations

TOLERANCES: dict[str, float] = {
    "fp64": 1e-6,
    "fp32": 1e-4,
    "tf32": 5e-3,
    "fp16": 1e-2,
}


def tolerance(precision: str) -> float:
    if precision not in TOLERANCES:
        raise ValueError(f"no tolerance is stated for precision {precision!r} (known: {', '.join(TOLERANCES)})")
    return TOLERANCES[precision]
