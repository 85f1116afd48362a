"""Google Drive: find a file's id in a public folder, and the URL that serves its bytes.

Both steps use gdown, which knows Drive's pages: the folder listing
(``gdown.download_folder(..., skip_download=True)``) and the "file too large to scan"
confirmation page (``get_url_from_gdrive_confirmation``). The bytes themselves are then
fetched by :mod:`pixelnerf.download.transfer`, which resumes with HTTP Range.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from urllib.parse import urlsplit

import requests

from pixelnerf.download.transfer import connection_error
from pixelnerf.errors import PipelineError


def find_in_folder(folder_id: str, file_name: str, timeout_s: float) -> str:
    """The Drive id of ``file_name`` in the public folder ``folder_id`` (listed now)."""
    # gdown is imported when Drive is used, so reading the config (the workflow does) stays fast.
    import gdown
    from gdown.exceptions import DownloadError

    label = f"the Google Drive folder {folder_id}"
    try:
        listing = gdown.download_folder(
            id=folder_id, skip_download=True, quiet=True, use_cookies=False, timeout=timeout_s
        )
    except requests.RequestException as exc:
        raise connection_error(exc, "Google Drive", label) from exc
    except DownloadError as exc:
        reason = " ".join(str(exc).split())
        raise PipelineError(f"cannot list {label}: {reason}") from exc
    # gdown names files of sub-folders "sub/name"; the archive may sit in one.
    matches = [entry for entry in listing if PurePosixPath(entry.path).name == file_name]
    if len(matches) == 1:
        return matches[0].id
    if matches:
        where = ", ".join(entry.path for entry in matches)
        raise PipelineError(f"{label} holds several files named {file_name} ({where})")
    shown = ", ".join(sorted(entry.path for entry in listing)) or "nothing"
    raise PipelineError(f"{label} has no file {file_name} (it lists: {shown})")


def resolve_download_url(
    session: requests.Session, file_id: str, url_template: str, label: str, timeout_s: float
) -> str:
    """The URL serving the bytes of Drive file ``file_id``.

    Drive answers small files at once; for large ones it sends a page asking to confirm
    the download without a virus scan, whose form gdown turns into the real URL.
    """
    from gdown.download import get_url_from_gdrive_confirmation
    from gdown.exceptions import FileURLRetrievalError

    url = url_template.format(id=file_id)
    try:
        response = session.get(url, stream=True, timeout=timeout_s)
    except requests.RequestException as exc:
        raise connection_error(exc, urlsplit(url).netloc, label) from exc
    with response:
        if response.status_code >= 400:
            raise PipelineError(
                f"HTTP {response.status_code} {response.reason or 'error'} while asking Google "
                f"Drive for {label} (id {file_id})"
            )
        content_type = response.headers.get("Content-Type", "")
        if "Content-Disposition" in response.headers or not content_type.startswith("text/html"):
            return response.url
        try:
            page = response.text
        except requests.RequestException as exc:
            raise connection_error(exc, urlsplit(url).netloc, label) from exc
    try:
        return get_url_from_gdrive_confirmation(page)
    except FileURLRetrievalError as exc:
        reason = " ".join(str(exc).split())
        raise PipelineError(
            f"Google Drive does not serve {label} (id {file_id}): {reason}"
        ) from exc
