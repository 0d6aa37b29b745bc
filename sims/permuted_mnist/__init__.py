"""Permuted MNIST: ten ten-way tasks, each MNIST under its own fixed pixel permutation."""
