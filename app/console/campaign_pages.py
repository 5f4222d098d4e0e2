"""The console's campaign pages (work in progress)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
