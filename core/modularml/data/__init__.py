"""Data: FeatureSets on Arrow, their views and splits, and symbolic references to their columns.

- :class:`FeatureSet`: one Arrow table of samples (``features``, ``targets``, ``tags``; a column
  per ``domain.key.rep``; a UUID per sample) with named splits.
- :class:`FeatureSetView`: rows and columns of a FeatureSet, as an index array (no data copy).
- :class:`FeatureSetReference`, :class:`FeatureSetColumnReference`: names of columns, resolved
  against an ExperimentContext when needed.
- :class:`SampleCollection`, :class:`SampleSchema`: the table and its per-column shapes and dtypes.
"""

from modularml.data.collection import SampleCollection
from modularml.data.featureset import FeatureSet
from modularml.data.references import FeatureSetColumnReference, FeatureSetReference
from modularml.data.schema import (
    DATA_DOMAINS,
    DOMAIN_FEATURES,
    DOMAIN_OUTPUTS,
    DOMAIN_SAMPLE_UUIDS,
    DOMAIN_TAGS,
    DOMAIN_TARGETS,
    REP_RAW,
    REP_TRANSFORMED,
    REPRESENTATIONS,
    ColumnSpec,
    SampleSchema,
)
from modularml.data.view import FeatureSetView

__all__ = [
    "DATA_DOMAINS",
    "DOMAIN_FEATURES",
    "DOMAIN_OUTPUTS",
    "DOMAIN_SAMPLE_UUIDS",
    "DOMAIN_TAGS",
    "DOMAIN_TARGETS",
    "REPRESENTATIONS",
    "REP_RAW",
    "REP_TRANSFORMED",
    "ColumnSpec",
    "FeatureSet",
    "FeatureSetColumnReference",
    "FeatureSetReference",
    "FeatureSetView",
    "SampleCollection",
    "SampleSchema",
]
