"""Posterior sampling of a Bayesian MLP on the 1D regression toy data with HMC or NUTS (``train.py``)."""
