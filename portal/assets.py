"""Static files of the dashboard, served from memory under a content-hash URL
(``/dashboard/static/<hash>/<name>``) with ``Cache-Control: public, max-age=31536000,
immutable``: a changed file gets a new URL, so browsers never revalidate an old one."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

STATIC_DIR = Path(__file__).with_name("static")
IMMUTABLE = "public, max-age=31536000, immutable"
TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}


@dataclass(frozen=True)
class Asset:
    name: str
    body: bytes
    version: str
    media_type: str


class Assets:
    def __init__(self, directory: Path = STATIC_DIR, *, mount: str = "/dashboard/static"):
        self.mount = mount.rstrip("/")
        self.files: dict[str, Asset] = {}
        for path in sorted(directory.iterdir()):
            if path.suffix in TYPES:
                body = path.read_bytes()
                version = hashlib.sha256(body).hexdigest()[:12]
                self.files[path.name] = Asset(path.name, body, version, TYPES[path.suffix])

    def url(self, name: str) -> str:
        asset = self.files[name]
        return f"{self.mount}/{asset.version}/{name}"

    def get(self, version: str, name: str) -> Asset | None:
        asset = self.files.get(name)
        return asset if asset is not None and asset.version == version else None
