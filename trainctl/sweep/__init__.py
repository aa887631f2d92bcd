"""Sweeps: an Optuna search over a config's ``sweep:`` section (``trainctl sweep``).

space.py (the section's schema and checks, no Optuna), study.py (storage, sampler,
pruner, grid queue), trial.py (the per-epoch reporter inside a trial process),
runner.py (trial processes, parallel, resume), state.py (sweep.json),
report.py (table, best.yaml, plots).
"""
