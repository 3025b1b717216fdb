"""Numerical reference solvers (numpy) for PDEs without a closed-form solution."""
