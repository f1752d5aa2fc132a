"""Configuration loading and validation: YAML files in, a DesiredState out.

    qlik-email.yaml  --+                                  (source)  parse, keep positions
    tenants/*.yaml   --+--> Document(s) --schema/checks--> (schema, checks)
                                      --merge defaults--> (build)   TenantSpec, Settings
                                                          (loader)  DesiredState | ConfigError

The only public entry point is `load_config`. Every problem of every file is
collected into one ConfigError (file:line:column each); no secret is resolved.
"""

from __future__ import annotations

from reconciler.config.loader import load_config

__all__ = ["load_config"]
