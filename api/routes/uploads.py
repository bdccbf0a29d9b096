"""The code upload endpoint behind `codeUploadUrl`, for machine versions and migrations (S3
presigned-POST style: no bearer token; the signed `token` form field authorizes the upload and
says what the code is for)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException

from api.deps import ServicesDep
from api.openapi import errors
from api.services.uploads import UPLOAD_PATH
from runtime.errors import InvalidRequestError

router = APIRouter(tags=["machine versions", "migrations"])

# The form is read by hand (its size and field limits), so FastAPI cannot describe it.
_FORM = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["token", "file"],
                "properties": {
                    "token": {"type": "string", "description": "from `codeUploadFields`"},
                    "content-encoding": {"type": "string", "enum": ["gzip"]},
                    "file": {"type": "string", "format": "binary"},
                },
            }
        }
    },
}


@router.post(
    UPLOAD_PATH,
    status_code=204,
    response_class=Response,
    responses=errors(
        (400, "no valid or unexpired upload token, or no file, or the file is not valid gzip"),
        (404, "the version to upload to is gone"),
        413,
        authenticated=False,
    ),
    openapi_extra={"requestBody": _FORM},
)
async def upload_code(request: Request, services: ServicesDep) -> Response:
    """Step 2 of 3: receive the code (multipart `file`, plain or gzip)."""
    try:
        async with request.form(max_files=1, max_fields=50) as form:
            token, upload = form.get("token"), form.get("file")
            if not isinstance(token, str):
                raise InvalidRequestError("the form has no upload token", parameter="token")
            if not isinstance(upload, UploadFile):
                raise InvalidRequestError("the form has no file", parameter="file")
            content = await upload.read()
            gzipped = form.get("content-encoding") == "gzip"
    except (MultiPartException, AssertionError, KeyError) as exc:
        raise InvalidRequestError("expected a multipart form", parameter="file") from exc
    await run_in_threadpool(services.uploads.receive, token, content, gzipped=gzipped)
    return Response(status_code=204)
