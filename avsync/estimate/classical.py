"""The classical lip-sync scorer: lip opening against the speech envelope.

No training: for each candidate offset the envelope is read at the times that offset
implies and correlated (Pearson) with the inner-lip opening. The mouth moves before
the sound it shapes, so the envelope is read ARTICULATION_LEAD_S later than the
picture; that lead is calibrated on in-sync clips (tools/calibrate_classical.py,
README "Lip-sync measurement"), never on the evaluation split.
"""

from __future__ import annotations

import numpy as np

# Median peak lag of opening-vs-envelope on the training split of ../shared/clips/dev
# (tools/calibrate_classical.py; recorded in README). Sound follows the mouth by this.
ARTICULATION_LEAD_S = 0.0


def zscore_rows(x: np.ndarray) -> np.ndarray:
    x = x - x.mean(axis=-1, keepdims=True)
    sd = x.std(axis=-1, keepdims=True)
    return np.divide(x, sd, out=np.zeros_like(x), where=sd > 1e-9)


def correlation_curve(
    video_t: np.ndarray,
    opening: np.ndarray,
    env_t: np.ndarray,
    env: np.ndarray,
    offsets_s: np.ndarray,
    lead_s: float = ARTICULATION_LEAD_S,
) -> np.ndarray:
    """Pearson correlation of opening(t) with env(t + lead - d), for each offset d.

    d > 0 means the audio leads: the sound of picture time t was captured at t - d.
    """
    when = video_t[None, :] + lead_s - offsets_s[:, None]
    a = np.interp(when, env_t, env)
    v = zscore_rows(opening[None, :].astype(np.float64))
    return (zscore_rows(a) * v).mean(axis=1)
