"""The six limb leads hold two independent signals: derive the missing ones exactly.

Einthoven and Goldberger (the definitions, not approximations), with ``I`` and ``II``
as the basis::

    III = II - I
    aVR = -(I + II) / 2
    aVL = I - II / 2
    aVF = II - I / 2

Any two of I, II and III give the third, and with it the augmented leads. A record
that stores only I and II (Holter exports, some 8-lead formats) thus has all six limb
leads, not two leads and four zero-filled ones.

>>> sig = np.zeros((12, 3), np.float32); sig[0], sig[1] = [1, 2, 3], [3, 2, 1]
>>> mask = np.zeros(12, bool); mask[:2] = True
>>> derived = derive_limb_leads(sig, mask)
>>> derived, sig[2].tolist(), sig[3].tolist()
(['III', 'aVR', 'aVL', 'aVF'], [2.0, 0.0, -2.0], [-2.0, -2.0, -2.0])
"""

from __future__ import annotations

import numpy as np

from ecgreport.leads import STANDARD_LEADS

I, II, III, AVR, AVL, AVF = range(6)
LIMB_LEADS = STANDARD_LEADS[:6]


def derive_limb_leads(signal_mv: np.ndarray, lead_mask: np.ndarray) -> list[str]:
    """Fill missing limb leads in place from two of I, II, III; return the names derived.

    ``signal_mv``: ``(12, n_samples)`` mV in ``STANDARD_LEADS`` order; ``lead_mask``:
    ``(12,)`` bool, True for usable leads. Rows derived are written into ``signal_mv``
    and set True in ``lead_mask``. Leads present are never changed. Returns ``[]``
    when fewer than two of I, II, III are usable (nothing can be derived).
    """
    have = [bool(lead_mask[k]) for k in (I, II, III)]
    if sum(have) < 2 or all(lead_mask[:6]):
        return []
    x = signal_mv
    # The basis (I, II) as float64 views or derived rows; float64 keeps III = II - I exact
    # to float32 rounding whatever the order of the operations.
    if have[0] and have[1]:
        lead_i, lead_ii = x[I].astype(np.float64), x[II].astype(np.float64)
    elif have[0]:  # I and III: II = I + III
        lead_i = x[I].astype(np.float64)
        lead_ii = lead_i + x[III]
    else:  # II and III: I = II - III
        lead_ii = x[II].astype(np.float64)
        lead_i = lead_ii - x[III]
    formulas = {I: lambda: lead_i, II: lambda: lead_ii, III: lambda: lead_ii - lead_i,
                AVR: lambda: -(lead_i + lead_ii) / 2, AVL: lambda: lead_i - lead_ii / 2,
                AVF: lambda: lead_ii - lead_i / 2}
    derived = []
    for k in range(6):
        if not lead_mask[k]:
            x[k] = formulas[k]()
            lead_mask[k] = True
            derived.append(LIMB_LEADS[k])
    return derived


def basis_of(lead_mask: np.ndarray) -> str:
    """Which two leads a derivation used, for messages: ``"I and II"`` etc."""
    have = [name for k, name in zip((I, II, III), ("I", "II", "III")) if lead_mask[k]]
    return " and ".join(have[:2])
