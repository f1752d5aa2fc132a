"""Rendering: the only place that formats output (text, JSON, Markdown), and
the only place that escapes untrusted text for it (`escape`).

Functions here return strings or JSON-ready dicts; they never print. Modules:
`plan`, `apply`, `drift` (one per document), `merge` (shards), `github`
(workflow commands), `style` (colours, limits), `escape`.
"""

from __future__ import annotations

FORMATS = ("text", "json", "markdown")
