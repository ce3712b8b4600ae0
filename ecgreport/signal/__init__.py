"""Signal preprocessing between reading a record and the model (numpy/scipy, no torch)."""

from ecgreport.signal.preprocess import WindowPlan, normalise, plan_windows, resample

__all__ = ["WindowPlan", "normalise", "plan_windows", "resample"]
