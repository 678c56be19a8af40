from typing import Literal

from pydantic import BaseModel


class CheckReadinessResponse(BaseModel):
    status: Literal["ready"] = "ready"
    schema_revision: str
