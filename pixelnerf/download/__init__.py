"""Downloads of the published datasets and weights listed in `config/sources.yaml`.

``ensure_source(name, data_root, sources_path)`` makes one source ready and returns its
folder; ``completion_marker(...)`` names the file that proves it is (a workflow output).
"""

from pixelnerf.download.fetch import completion_marker, ensure_source, marker_path, target_path
from pixelnerf.download.sources import FileSpec, Settings, Sources, SourceSpec, load_sources

__all__ = [
    "FileSpec",
    "Settings",
    "SourceSpec",
    "Sources",
    "completion_marker",
    "ensure_source",
    "load_sources",
    "marker_path",
    "target_path",
]
