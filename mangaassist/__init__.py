"""MangaAssist intent framework: train, evaluate, ship and watch an intent classifier.

Stages flow one way: data -> model -> training -> evaluation -> export -> serve -> monitor.
"""

__version__ = "0.1.0"
