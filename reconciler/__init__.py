"""qlik-email: the e-mail configuration of Qlik Cloud tenants, as code."""

__version__ = "0.1.0"
