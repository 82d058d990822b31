"""Which modality a feature belongs to (chapters 3 and 4): the paper's MDS, the 2025-26 scores, the
ground truth of the world and the head-to-head that checks every method against it.

    dominance     the Modality Dominance Score (MDS) of Yan et al. and its classes ImgD, TxtD, CMD
    scores        energy, bridge, concept and probe-partner scores (this package's surface)
    groundtruth   what each unit encodes in the world, and the class its (q, p) implies
    comparison    every method against the ground truth, with its controls
"""
from mdsgap.attribution.scores import (METHODS, WEIGHTINGS, CrossCovariance, ProbePartners, Weighting,
                                       bimodal, bridge, bridge_energy, bridge_modality_score,
                                       concept_scores, cross_covariance, cross_modal_share,
                                       energy_classes, fit_probe_partners, ideal_ratio_mds,
                                       pair_latents)
from mdsgap.world import ideal_share  # the ground truth every share score is compared with
