"""Signal preprocessing between reading a record and the model (numpy/scipy, no torch)."""

from ecgreport.signal.preprocess import WindowPlan, model_window, normalise, plan_windows, resample

__all__ = ["WindowPlan", "model_window", "normalise", "plan_windows", "resample"]
