"""Reference applications, each with on-device learning.

- ``neuroplast.apps.kws``: audio keyword spotting with a delay-learning SNN.
- ``neuroplast.apps.motion``: event-camera motion detection with heterogeneous delays.
- ``neuroplast.apps.place``: visual place recognition with ensembles of region SNNs.

Import the subpackage you need; this package itself exports nothing else.
"""

__all__ = ["kws", "motion", "place"]
