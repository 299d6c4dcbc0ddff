"""Kolmogorov–Smirnov distances between generated and reference crystals (metric ``ks``)."""
