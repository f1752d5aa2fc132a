"""Import: from live tenants to a configuration repository (the way in for fleets
that were configured by hand).

    inventory (CSV / YAML / --tenant)  --(inventory)-->  InventoryEntry
    InventoryEntry --client GET, normalize--> LiveState   (the CLI, like plan)
    LiveState      --(render)-->  qlik-email.yaml + tenants/<name>.yaml text

The files validate and plan as no-op once their secret references are set,
except where the live state itself needs a change (a legacy PATCH-made
configuration, a tenant that reports no secret); the file says so in a comment.
"""

from __future__ import annotations

from reconciler.importer.inventory import (
    InventoryEntry,
    auth_issues,
    entry_issues,
    load_inventory,
    parse_tenant_option,
)
from reconciler.importer.render import (
    ImportedTenant,
    render_root,
    render_tenant,
    secret_reference,
    secret_references,
    shared_email,
    summary_counts,
)

__all__ = [
    "ImportedTenant",
    "InventoryEntry",
    "auth_issues",
    "entry_issues",
    "load_inventory",
    "parse_tenant_option",
    "render_root",
    "render_tenant",
    "secret_reference",
    "secret_references",
    "shared_email",
    "summary_counts",
]
