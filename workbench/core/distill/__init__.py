"""Knowledge distillation: losses and teachers (the `distill` stage uses them)."""
