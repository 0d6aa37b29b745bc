"""Continual-learning training loop, methods and task data shared by the MNIST experiments."""
