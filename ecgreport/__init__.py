"""ecgreport: ECG diagnosis reports and zero-shot disease scores.

Implements (and corrects) Qiu et al., "Transfer Knowledge from Natural Language to
Electrocardiography" (Findings of EACL 2023). For research use only: not a medical device.
"""

__version__ = "0.1.0"

DISCLAIMER = (
    "For research use only. Not a medical device: outputs are machine-generated, unvalidated "
    "for clinical use, and must not be used for diagnosis or treatment decisions."
)
