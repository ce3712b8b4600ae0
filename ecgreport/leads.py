"""The 12 standard leads, in the order every model input uses, and their aliases."""

from __future__ import annotations

STANDARD_LEADS: tuple[str, ...] = (
    "I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6",
)

# Spellings seen in WFDB headers (PTB-XL, PhysioNet Challenge, MIMIC-IV-ECG, Holter exports).
_ALIASES: dict[str, str] = {
    "i": "I", "ii": "II", "iii": "III",
    "l1": "I", "l2": "II", "l3": "III", "lead i": "I", "lead ii": "II", "lead iii": "III",
    "d1": "I", "d2": "II", "d3": "III", "mlii": "II", "ml2": "II",
    "avr": "aVR", "avl": "aVL", "avf": "aVF",
    "-avr": None,  # inverted aVR (Cabrera display) is not aVR: treated as an extra lead
}
for _n in range(1, 7):
    _ALIASES[f"v{_n}"] = f"V{_n}"
    _ALIASES[f"c{_n}"] = f"V{_n}"  # European chest-lead naming


def canonical_lead(name: str) -> str | None:
    """Map a header's lead name to its standard name, or None for a non-standard lead.

    >>> canonical_lead("AVR"), canonical_lead(" v5 "), canonical_lead("X")
    ('aVR', 'V5', None)
    """
    key = name.strip().lower().replace("_", " ")
    return _ALIASES.get(key)
