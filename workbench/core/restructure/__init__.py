"""Architecture changes that keep what a layer computes (approximately): low-rank factorisation,
depthwise separable replacement, batch-norm folding. Each records a replayable transform."""
