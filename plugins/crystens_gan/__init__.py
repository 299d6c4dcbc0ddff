"""Vanilla GAN generator (built-in plugin, generator name ``gan``); needs ``crystens[torch]``."""
