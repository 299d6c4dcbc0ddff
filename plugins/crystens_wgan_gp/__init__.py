"""WGAN-GP generator (built-in plugin, generator name ``wgan-gp``); needs ``crystens[torch]``."""
