"""Quantization algorithms used by the `quantize` stage (the stage module itself stays thin).

    kmeans.py   fast 1-D k-means (sorted values, vectorised Lloyd steps)
    layers.py   which layers a method touches and how many bits each gets
    sharing.py  k-means weight sharing of a model's layers (codebooks + cluster labels)
    tied.py     fine-tuning through a tied parametrisation (shared centroids, straight-through binary)
    binary.py   binary (sign x per-channel scale) and ternary weights
    int8.py     int8 post-training (dynamic, static) and quantization-aware training with torch.ao FX
    floats.py   fp16 / bf16 storage and inference
"""
