"""Configuration loading and validation: YAML files in, a DesiredState out.

    qlik-email.yaml  --+                                  (source)  parse, keep positions
    tenants/*.yaml   --+--> Document(s) --schema/checks--> (schema, checks)
                                      --merge defaults--> (build)   TenantSpec, Settings
                                                          (loader)  DesiredState | ConfigError

The public entry points are `load_config`, and `ConfigLoad` for the same one
tenant file at a time (the engine reads the first tenants while the last files
load). Every problem of every file is collected into one ConfigError
(file:line:column each); no secret is resolved.
"""

from __future__ import annotations

from reconciler.config.loader import ConfigLoad, load_config

__all__ = ["ConfigLoad", "load_config"]
