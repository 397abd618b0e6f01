"""Side-by-side speed and quality runs of automl against KerasTuner and a hand-written Optuna+MLflow loop.

``python -m benchmarks.run`` runs everything; see ``benchmarks/README.md``.
"""
