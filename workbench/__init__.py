"""workbench: make neural networks smaller and faster, and see what each step did."""
__version__ = "0.1.0"
