"""Training on a dataset of ECGs and reports (ecgreport.dataset.format; PTB-XL is one): data loading, loop, checkpoints (`checkpoint` owns their format)."""
