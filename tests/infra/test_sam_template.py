"""The SAM template: cfn-lint clean, and the properties deployment depends on.

cfn-lint checks the CloudFormation/SAM schema; the tests below check what a
schema cannot: payload format 2.0 on every route, secrets only by dynamic
reference, a role that can do nothing but write its own logs.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from functions.settings import ApiSettings

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "infra" / "sam" / "template.yaml"
SECRET_VARIABLES = (
    "POSTGRES_URI",
    "OPENDOT_RUNTIME_INTERNAL_SECRET",
    "OPENDOT_SESSION_SECRET",
    "OPENDOT_SECRETS_KEY",
    "SUPABASE_JWT_SECRET",
    "OPENDOT_FIRMWARE_S3_ACCESS_KEY_ID",
    "OPENDOT_FIRMWARE_S3_SECRET_ACCESS_KEY",
)


class _CfnLoader(yaml.SafeLoader):
    """SafeLoader that keeps CloudFormation short-form tags as {"!Tag": value}."""


def _construct_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        assert isinstance(node, yaml.MappingNode)
        value = loader.construct_mapping(node, deep=True)
    return {f"!{suffix}": value}


_CfnLoader.add_multi_constructor("!", _construct_tag)


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    loaded = yaml.load(TEMPLATE.read_text(encoding="utf-8"), Loader=_CfnLoader)  # noqa: S506
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def function(template: dict[str, Any]) -> dict[str, Any]:
    functions = [
        r for r in template["Resources"].values() if r["Type"] == "AWS::Serverless::Function"
    ]
    assert len(functions) == 1
    properties: dict[str, Any] = functions[0]["Properties"]
    return properties


def _cfn_lint() -> list[str]:
    found = shutil.which("cfn-lint", path=str(Path(sys.executable).parent))
    return [found] if found else [sys.executable, "-m", "cfnlint"]


def test_cfn_lint_passes() -> None:
    result = subprocess.run(
        [*_cfn_lint(), str(TEMPLATE)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_cfn_lint_catches_a_broken_template(tmp_path: Path) -> None:
    """Guards the test above against a linter that silently checks nothing."""
    broken = tmp_path / "template.yaml"
    broken.write_text(TEMPLATE.read_text().replace("MemorySize: !Ref", "MemorySiz: !Ref"))
    result = subprocess.run(
        [*_cfn_lint(), str(broken)], capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
    assert "MemorySiz" in result.stdout


def test_http_api_routes_use_payload_format_2(function: dict[str, Any]) -> None:
    events = function["Events"].values()
    routes = {(e["Properties"]["Method"], e["Properties"]["Path"]) for e in events}
    assert routes == {("ANY", "/api/{proxy+}"), ("GET", "/health")}
    for event in events:
        assert event["Type"] == "HttpApi"
        assert event["Properties"]["PayloadFormatVersion"] == "2.0"


def test_function_runs_the_mangum_handler_on_python_311_or_newer(
    function: dict[str, Any],
) -> None:
    assert function["Handler"] == "functions.handler.handler"
    match = re.fullmatch(r"python(\d+)\.(\d+)", function["Runtime"])
    assert match is not None
    assert (int(match[1]), int(match[2])) >= (3, 11)
    assert function["CodeUri"].endswith("build/lambda/opendot-functions.zip")


def test_secrets_come_only_from_dynamic_references(function: dict[str, Any]) -> None:
    variables = function["Environment"]["Variables"]
    assert set(SECRET_VARIABLES) <= set(variables)
    for name in SECRET_VARIABLES:
        text = repr(variables[name])
        assert f"{{{{resolve:secretsmanager:${{SecretId}}:SecretString:{name}}}}}" in text, name
    # No literal value anywhere may look like a secret or a database URL.
    for name, value in variables.items():
        if isinstance(value, str):
            assert "://" not in value and "resolve:" not in value, name


def test_role_only_writes_its_own_logs(template: dict[str, Any], function: dict[str, Any]) -> None:
    assert function["Role"] == {"!GetAtt": "FunctionRole.Arn"}
    role = template["Resources"]["FunctionRole"]["Properties"]
    assert "ManagedPolicyArns" not in role
    statements = [s for policy in role["Policies"] for s in policy["PolicyDocument"]["Statement"]]
    actions = {a for s in statements for a in s["Action"]}
    assert actions == {"logs:CreateLogStream", "logs:PutLogEvents"}
    for statement in statements:
        assert statement["Effect"] == "Allow"
        assert statement["Resource"] == {"!GetAtt": "FunctionLogGroup.Arn"}
    assert function["LoggingConfig"]["LogGroup"] == {"!Ref": "FunctionLogGroup"}


def test_cors_origins_are_a_parameter(template: dict[str, Any]) -> None:
    cors = template["Resources"]["HttpApi"]["Properties"]["CorsConfiguration"]
    assert cors["AllowOrigins"] == {"!Ref": "CorsAllowedOrigins"}
    assert template["Parameters"]["CorsAllowedOrigins"]["Type"] == "CommaDelimitedList"
    assert "Default" not in template["Parameters"]["CorsAllowedOrigins"]


def test_timeout_fits_inside_the_gateway_limit(function: dict[str, Any]) -> None:
    for event in function["Events"].values():
        assert function["Timeout"] * 1000 < event["Properties"]["TimeoutInMillis"] <= 30000


def test_environment_names_are_real_api_settings(function: dict[str, Any]) -> None:
    aliases = {f.alias for f in ApiSettings.model_fields.values() if f.alias}
    # The revision only exists to make CloudFormation re-resolve the secrets.
    unknown = set(function["Environment"]["Variables"]) - aliases - {"OPENDOT_SECRETS_REVISION"}
    assert not unknown


def test_production_settings_accept_the_template_environment(
    function: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The literal values the template sets, plus stand-ins for the parameters
    and secrets, make a valid production ApiSettings."""
    stand_ins = {
        "OPENDOT_LOG_LEVEL": "INFO",
        "OPENDOT_LOCAL_AUTH_DISABLED": "false",
        "SUPABASE_URL": "",
        "OPENDOT_RUNTIME_PUBLIC_WS_URL": "wss://voice.example.com/voice",
        "OPENDOT_RUNTIME_PUBLIC_HTTP_URL": "https://voice.example.com",
        "OPENDOT_CORS_ORIGINS": "https://console.example.com",
        "POSTGRES_URI": "postgresql://postgres.ref:pw@aws-0-eu-west-1.pooler.supabase.com:6543/postgres",
        "OPENDOT_RUNTIME_INTERNAL_SECRET": "x" * 43,
        "OPENDOT_SESSION_SECRET": "y" * 43,
        "OPENDOT_SECRETS_KEY": "A" * 43 + "=",
        "OPENDOT_SECRETS_REVISION": "1",
        "OPENDOT_FIRMWARE_S3_ENDPOINT": "https://ref.supabase.co/storage/v1/s3",
        "OPENDOT_FIRMWARE_S3_REGION": "eu-west-1",
        "OPENDOT_FIRMWARE_S3_BUCKET": "opendot-firmware",
        "OPENDOT_FIRMWARE_S3_ACCESS_KEY_ID": "a" * 32,
        "OPENDOT_FIRMWARE_S3_SECRET_ACCESS_KEY": "b" * 64,
    }
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name, value in function["Environment"]["Variables"].items():
        if name == "SUPABASE_JWT_SECRET":  # only with UseSupabaseJwtSecret=true
            monkeypatch.delenv(name, raising=False)
            continue
        monkeypatch.setenv(name, value if isinstance(value, str) else stand_ins[name])
    api = ApiSettings()
    assert api.env == "production"
    assert api.auth_required is True
    assert api.uses_transaction_pooler is True
    assert api.db_pool_max == 1
    assert api.cors_origins == ["https://console.example.com"]
