"""The Imagen cascade of the CrysTens paper (imagen-pytorch), as a crystens generator."""
