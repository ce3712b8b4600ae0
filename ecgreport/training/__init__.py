"""Training on PTB-XL (or any dataset in its layout): data loading, loop, checkpoints."""
