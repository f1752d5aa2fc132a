from reconciler.client.live import normalize
from reconciler.model import Provider


def test_no_config_shape_is_absent():
    state = normalize({"isValid": False, "passwordExists": False})
    assert state.email is None
    assert state.health.is_valid is False


def test_flat_provider_config_is_read():
    state = normalize(
        {
            "serviceProvider": "Microsoft365",
            "providerConfig": {"clientId": "c", "emailAddress": "a@b.co", "providerTenantId": "t"},
            "passwordExists": True,
        }
    )
    assert state.email is not None
    assert state.email.provider is Provider.MICROSOFT365
    assert state.email.as_dict() == {
        "clientId": "c",
        "emailAddress": "a@b.co",
        "providerTenantId": "t",
    }
    assert state.email.secret_exists is True
    assert state.email.legacy is False


def test_legacy_top_level_fields_are_basic_auth():
    state = normalize(
        {
            "_id": "64c03b868a37cb93b4529c89",
            "serverAddress": "email-smtp.eu-west-2.amazonaws.com",
            "serverPort": 2465,
            "securityType": "SSL/TLS",
            "emailAddress": "qlik@mydomain.com",
            "username": "SKIARX3IRHQ7J3ZLGABC",
            "passwordExists": True,
            "isValid": True,
            "authFailures": 0,
            "status": {"statusCode": 0, "statusReason": "OK"},
        }
    )
    assert state.email is not None
    assert state.email.provider is Provider.BASIC_AUTH
    assert state.email.legacy is True
    assert state.email.as_dict()["serverPort"] == 2465
    assert state.health.status_reason == "OK"


def test_port_given_as_string_or_float_becomes_int():
    assert (
        normalize({"serverAddress": "h", "serverPort": "2465"}).email.as_dict()["serverPort"]
        == 2465
    )
    flat = {"serviceProvider": "BasicAuth", "providerConfig": {"serverPort": 587.0}}
    assert normalize(flat).email.as_dict()["serverPort"] == 587


def test_nested_schema_name_is_unwrapped():
    state = normalize(
        {
            "serviceProvider": "BasicAuth",
            "providerConfig": {"getBasicAuthConfig": {"serverAddress": "h"}},
        }
    )
    assert state.email.as_dict() == {"serverAddress": "h"}


def test_provider_config_wins_over_top_level_fields():
    state = normalize(
        {
            "serviceProvider": "BasicAuth",
            "serverAddress": "old",
            "providerConfig": {"serverAddress": "new", "senderName": "S"},
        }
    )
    assert state.email.as_dict() == {"serverAddress": "new", "senderName": "S"}


def test_health_fields_are_read():
    state = normalize(
        {
            "serviceProvider": "BasicAuth",
            "isValid": False,
            "errorCode": "INVALID_CREDENTIALS",
            "authFailures": 3,
        }
    )
    assert state.health.error_code == "INVALID_CREDENTIALS"
    assert state.health.auth_failures == 3


def test_fingerprint_ignores_health_counters_but_not_config():
    base = {
        "serviceProvider": "BasicAuth",
        "providerConfig": {"serverAddress": "h"},
        "authFailures": 0,
    }
    same = normalize({**base, "authFailures": 5}).fingerprint
    assert normalize(base).fingerprint == same
    other = normalize({**base, "providerConfig": {"serverAddress": "x"}}).fingerprint
    assert normalize(base).fingerprint != other
