"""Diffusers DDPM generator (built-in plugin, generator name ``ddpm``); needs ``crystens[diffusion]``."""
