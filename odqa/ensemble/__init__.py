"""`odqa ensemble`: combine several runs' answers (majority vote or summed probabilities).

``voting`` holds the pure functions (runs in, predictions out), ``cli`` the command that reads run folders,
writes ``predictions.json``/``nbest_predictions.json`` and scores every run next to the ensemble.
"""
from odqa.ensemble.voting import ENSEMBLE_METHODS, TIE_BREAKS, ensemble_predictions, load_run

__all__ = ["ENSEMBLE_METHODS", "TIE_BREAKS", "ensemble_predictions", "load_run"]
