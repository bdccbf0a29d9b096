"""`/billing`: a self-hosted server bills nobody; return the configured URL."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from api.auth import Principal
from api.deps import ServicesDep, requires
from api.openapi import errors
from api.schemas import BillingPublic

router = APIRouter(tags=["billing"])


@router.get("/billing", response_model=BillingPublic, responses=errors())
def billing(
    services: ServicesDep,
    _principal: Annotated[Principal, Depends(requires("org.write"))],
) -> BillingPublic:
    """The billing page's URL (configurable, `BACKSTATE_BILLING_URL`)."""
    return BillingPublic(url=services.settings.billing_url)
