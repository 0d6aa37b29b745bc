"""Bayesian main networks and variational helpers (prior-focused and posterior-replay continual learning).

This package is reserved by the layout (DESIGN.md) and packaged by setup.py, but holds no modules yet: no
issue has built them. Posterior sampling for Bayesian networks is available today through :mod:`utils.hmc`.
"""
