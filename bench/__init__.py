"""pinnbench: side-by-side speed, memory, FLOPs and accuracy of PINN variants."""

__version__ = "0.1.0"
