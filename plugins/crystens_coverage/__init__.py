"""Coverage (COV-R, COV-P) and Wasserstein distances of generated crystals against a reference set (metric ``coverage``, CDVAE's recipe)."""
