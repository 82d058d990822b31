"""Measuring the modality gap (Liang et al. 2022; Schrodi et al. 2025) and moving it (chapters 1, 5, 6).

    metrics      L2M, L2I, RMG, cone, linear separability (this package's surface: `gap.l2m`, ...)
    cones        the cone effect of a random network
    shifting     closing the gap by shifting or removing its directions
    robustness   nearest-neighbour and zero-shot decisions under perturbed embeddings (Chowers et al. 2026)
"""
from mdsgap.gap.metrics import (METRICS, REFERENCE, cone, gap_metrics, gap_vector, l2i, l2m,
                                linear_separability, metrics_table, normalize, pairwise_cosines,
                                project_2d, rmg)
