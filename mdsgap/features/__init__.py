"""Monosemantic features of paired embeddings (chapter 2): the extractors and the sets MDS scores.

    sets               the feature sets behind one interface (this package's surface: `features.build_sets`, ...)
    sae                sparse autoencoders: TopK, BatchTopK, Matryoshka, aligned, shared-support, bilingual
    ncl                non-negative contrastive heads
    interpretability   EmbSim and WinRate
    synthetic          paired embeddings with a known gap and known concepts, for tests and benchmarks
"""
from mdsgap.features.sets import (ALL_TOOLS, FORMAT, PAIRED_TOOLS, TOOLS, ExtractorsConfig, FeatureSet,
                                  build_sets, decoder_atoms, encode_all, encode_pairs, ncl_features,
                                  raw_features, sae_features)
