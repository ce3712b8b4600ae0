"""The torch model: ECG encoder, projection into the text model's space, report decoder, losses."""
