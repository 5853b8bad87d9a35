"""Retrain stage: labelled messages -> merged training data -> candidate -> gates -> registry.

``mangaassist retrain --labels LABELLED.jsonl`` (:mod:`~mangaassist.retrain.loop`) closes the
monitoring loop: the monitor's ``retrain_trigger`` alert names the command and prices it
(:func:`~mangaassist.monitor.alerts.roi_estimate`); active learning picks the messages; the
labellers fill their ``label`` column; this stage merges them into the champion's training
data (:mod:`~mangaassist.retrain.merge`: deduplicated, never into the test split, the golden
set or the gate set, with a data version recorded), trains with the champion's config, gates
the candidate against the champion and registers it for shadow, reporting the points it
actually recovered (:mod:`~mangaassist.retrain.recovery`) and what it cost.

Imports training, evaluation, release and monitor; later stages import nothing from here.
"""
