"""Split MNIST: five binary tasks (0/1, 2/3, 4/5, 6/7, 8/9) learned one after another."""
