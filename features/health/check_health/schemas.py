from typing import Literal

from pydantic import BaseModel


class CheckHealthResponse(BaseModel):
    status: Literal["ok"] = "ok"
