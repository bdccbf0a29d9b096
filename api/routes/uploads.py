"""The code upload endpoint behind `codeUploadUrl`, for machine versions and migrations (S3
presigned-POST style: no bearer token; the signed `token` form field authorizes the upload and
says what the code is for)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException

from api.deps import ServicesDep
from api.services.uploads import UPLOAD_PATH
from runtime.errors import InvalidRequestError

router = APIRouter(tags=["machine versions", "migrations"])


@router.post(UPLOAD_PATH, status_code=204, response_class=Response)
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
