"""The console (docs/console.md): GET / and GET /console/{version}/{file}.

Static files only: the page calls the public API itself, with the secret key
the user signs in with, so this function reads no table and holds no key.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from insights.console.assets import serve

logger = Logger()


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return serve(event)
