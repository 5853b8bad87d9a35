"""The seeded, synthetic-but-realistic MangaAssist chat corpus.

``generate`` builds it in memory; ``write_corpus`` writes ``corpus.jsonl``, the ground truth
of what was injected (``injected.json``) and the measured rates (``generation_report.json``).
"""

from mangaassist.data.generator.corpus import Corpus, generate, generation_report, write_corpus

__all__ = ["Corpus", "generate", "generation_report", "write_corpus"]
