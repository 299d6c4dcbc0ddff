"""Uniqueness and novelty of generated crystals with pymatgen's StructureMatcher (metrics ``uniqueness`` and ``novelty``)."""
