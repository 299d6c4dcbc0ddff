"""Energy above the convex hull of generated crystals (metric ``ehull``, paper Fig. 8).

A machine-learned energy model (CHGNet by default, an M3GNet/matgl model from a
local folder, or CGCNN) gives each structure's formation energy (eV/atom); the
energy above hull is its distance to the convex hull of ~23 000 Materials Project
phases that crystens ships (:mod:`crystens_ehull.hull`).

    >>> from crystens_core import get_metric
    >>> get_metric("ehull").compute(structures=structures)["e_above_hull_median"]

Importing this package is cheap; torch and the energy models load when a metric is created.
"""
