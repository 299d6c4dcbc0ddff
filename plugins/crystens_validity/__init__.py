"""Structural and compositional validity of generated crystals (metric ``validity``, CDVAE's definitions)."""
