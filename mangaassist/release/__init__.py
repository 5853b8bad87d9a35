"""Release stage: promotion gates, the model registry, model cards and promotion.

Between evaluation (which scores a model) and export (which ships it): :mod:`.gates` decides
promote or reject from scores and operational evidence, :mod:`.promotion` gathers that
evidence for a candidate and its champion, :mod:`.registry` keeps numbered versions with a
champion pointer and history, :mod:`.model_card` renders each version's card. Commands:
``mangaassist gate | registry`` (:mod:`.cli`).
"""
