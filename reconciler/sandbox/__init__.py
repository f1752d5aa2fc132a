"""A local, faithful stand-in for a fleet of Qlik Cloud tenants.

The demo, the tests and the benchmarks of qlik-email run against this: the
Transports email-config API and OAuth client credentials per tenant (at
`<base_url>/t/<tenant>`), a real SMTP server with three security modes and a
mailbox, a fake Microsoft identity provider, Qlik's rate limits, and fault
injection. Modules, from the outside in:

    fleet         Sandbox: start/stop, tenants, knobs, state behind the API's back
    configwriter  a qlik-email config repository for a running fleet
    api           routing and the request pipeline (faults, auth, limits, role)
    operations    the seven email-config operations
    inputcheck    request-body checks (INPUTCHECK-1)
    state         stored configuration, health, and the GET view
    probe         real SMTP logins/sends (aiosmtplib) and Microsoft 365 token requests
    auth          API keys, OAuth tokens;  ratelimit: sliding windows
    faults        injected latency, statuses, resets, stalls, echoed bodies
    stats         request log, counters, requests in flight
    httpserver    HTTP on aiohttp.web;  messages: Request, Response;  loop: its thread
    smtp          aiosmtpd listeners (smtpsession: their sessions, made cheaper);
                  mailbox, certs, identity (fake Microsoft 365)
    conformance   checks responses against the published OpenAPI document
    __main__      `python -m reconciler.sandbox serve ...`;  cli: `qlik-email sandbox`
"""

from reconciler.sandbox.fleet import Sandbox
from reconciler.sandbox.tenants import SandboxTenant

__all__ = ["Sandbox", "SandboxTenant"]
